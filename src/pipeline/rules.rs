//! Claim rules for the policy stage (`[routes.require]`): role- and attribute-based conditions on the
//! verified token's claims, and a time-of-day window. Parsed strictly at start, evaluated per request.

use serde_json::{Map, Value};

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The claim (a string, or an array of strings) holds at least one of these values.
    AnyOf {
        /// Dotted path of the claim.
        claim: Vec<String>,
        /// Accepted values.
        values: Vec<String>,
    },
    /// The claim equals this value.
    Equals {
        /// Dotted path of the claim.
        claim: Vec<String>,
        /// The value (string, number or boolean).
        value: Value,
    },
    /// The current UTC time of day lies in [start, end) (minutes since midnight; wraps past midnight).
    UtcBetween {
        /// Start, in minutes since midnight.
        start: u32,
        /// End, in minutes since midnight.
        end: u32,
    },
}

/// A named rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule's name, reported when it fails.
    pub name: String,
    /// Its condition.
    pub condition: Condition,
}

fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && text.len() == 5).then_some(h * 60 + m)
}

fn claim_path(value: &Value) -> Result<Vec<String>, String> {
    match value.as_str() {
        Some(path) if !path.is_empty() && path.split('.').all(|p| !p.is_empty()) => {
            Ok(path.split('.').map(str::to_string).collect())
        }
        _ => Err("`claim` must be a claim name or a dotted path such as realm_access.roles".into()),
    }
}

impl Rule {
    /// Parses `name = { … }` from the configuration; the error says what is wrong with it.
    pub fn parse(name: &str, spec: &Value) -> Result<Rule, String> {
        let table = spec.as_object().ok_or("a rule is a table such as { claim = \"roles\", any_of = [\"admin\"] }")?;
        for key in table.keys() {
            if !matches!(key.as_str(), "claim" | "any_of" | "equals" | "utc_between") {
                return Err(format!("unknown condition `{key}` (use any_of, equals or utc_between)"));
            }
        }
        let condition = match (table.get("claim"), table.get("any_of"), table.get("equals"), table.get("utc_between")) {
            (Some(claim), Some(Value::Array(items)), None, None) => {
                let values: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_string)).collect();
                match values {
                    Some(values) if !values.is_empty() => Condition::AnyOf { claim: claim_path(claim)?, values },
                    Some(_) => return Err("`any_of` is empty".into()),
                    None => return Err("`any_of` must list strings".into()),
                }
            }
            (Some(claim), None, Some(value), None) if !value.is_array() && !value.is_object() => {
                Condition::Equals { claim: claim_path(claim)?, value: value.clone() }
            }
            (None, None, None, Some(Value::Array(window))) => {
                let bounds: Option<Vec<u32>> = window.iter().map(|v| v.as_str().and_then(minutes)).collect();
                match bounds.as_deref() {
                    Some([start, end]) if start != end => Condition::UtcBetween { start: *start, end: *end },
                    _ => return Err("`utc_between` takes two different times such as [\"07:00\", \"19:00\"]".into()),
                }
            }
            _ => {
                return Err(
                    "a rule is `claim` with `any_of` (a list) or `equals` (a value), or `utc_between` alone".into()
                )
            }
        };
        Ok(Rule { name: name.to_string(), condition })
    }

    /// Whether the rule holds for `claims` at `now_minute` (UTC minutes since midnight).
    pub fn holds(&self, claims: &Map<String, Value>, now_minute: u32) -> bool {
        match &self.condition {
            Condition::AnyOf { claim, values } => match lookup(claims, claim) {
                Some(Value::String(s)) => values.iter().any(|v| v == s),
                Some(Value::Array(items)) => {
                    items.iter().filter_map(Value::as_str).any(|s| values.iter().any(|v| v == s))
                }
                _ => false,
            },
            Condition::Equals { claim, value } => lookup(claims, claim) == Some(value),
            Condition::UtcBetween { start, end } if start < end => (*start..*end).contains(&now_minute),
            Condition::UtcBetween { start, end } => now_minute >= *start || now_minute < *end,
        }
    }
}

/// The claim at a dotted path (`realm_access.roles`).
pub fn lookup<'c>(claims: &'c Map<String, Value>, path: &[String]) -> Option<&'c Value> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(claims.get(first)?, |value, segment| value.as_object()?.get(segment))
}

/// The current UTC time of day, in minutes since midnight.
pub fn utc_minute_now() -> u32 {
    ((crate::grant::now_secs() % 86_400) / 60) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(spec: Value) -> Result<Rule, String> {
        Rule::parse("r", &spec)
    }

    #[test]
    fn parsing_is_strict() {
        assert!(rule(json!({"claim": "roles", "any_of": ["hr"]})).is_ok());
        assert!(rule(json!({"claim": "dept", "equals": "hr"})).is_ok());
        assert!(rule(json!({"utc_between": ["22:00", "06:00"]})).is_ok());
        for (bad, says) in [
            (json!({"claim": "roles", "any_of": []}), "empty"),
            (json!({"claim": "roles", "none_of": ["x"]}), "unknown condition `none_of`"),
            (json!({"claim": "roles"}), "a rule is"),
            (json!({"claim": "", "equals": "x"}), "dotted path"),
            (json!({"claim": "a..b", "equals": "x"}), "dotted path"),
            (json!({"utc_between": ["7:00", "19:00"]}), "two different times"),
            (json!({"utc_between": ["07:00"]}), "two different times"),
            (json!({"claim": "x", "any_of": ["a"], "equals": "b"}), "a rule is"),
            (json!("roles"), "a table"),
        ] {
            let err = rule(bad.clone()).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn conditions_allow_and_deny() {
        let claims = json!({"roles": ["reader", "hr"], "dept": "hr", "level": 3, "realm_access": {"roles": ["admin"]}, "role": "ops"});
        let claims = claims.as_object().unwrap();
        let holds = |spec: Value, minute| rule(spec).unwrap().holds(claims, minute);
        assert!(holds(json!({"claim": "roles", "any_of": ["hr", "admin"]}), 0));
        assert!(!holds(json!({"claim": "roles", "any_of": ["admin"]}), 0));
        assert!(holds(json!({"claim": "role", "any_of": ["ops"]}), 0), "a string claim");
        assert!(holds(json!({"claim": "realm_access.roles", "any_of": ["admin"]}), 0), "a nested claim");
        assert!(!holds(json!({"claim": "realm_access.missing", "any_of": ["admin"]}), 0));
        assert!(holds(json!({"claim": "dept", "equals": "hr"}), 0));
        assert!(!holds(json!({"claim": "dept", "equals": "it"}), 0));
        assert!(holds(json!({"claim": "level", "equals": 3}), 0));
        assert!(!holds(json!({"claim": "absent", "equals": "x"}), 0));
        let office = json!({"utc_between": ["07:00", "19:00"]});
        assert!(holds(office.clone(), 7 * 60) && holds(office.clone(), 18 * 60 + 59));
        assert!(!holds(office.clone(), 19 * 60) && !holds(office, 6 * 60));
        let night = json!({"utc_between": ["22:00", "06:00"]});
        assert!(holds(night.clone(), 23 * 60) && holds(night.clone(), 60) && !holds(night, 12 * 60));
    }
}
