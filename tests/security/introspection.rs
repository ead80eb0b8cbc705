//! Introspection answers that say "active" for what must not pass: a refresh token answered as
//! node-oidc-provider answers for one (active, no `token_type`, no `aud`), tokens that say they are no
//! access tokens (Keycloak's `typ`, Ory Hydra's `token_use`), an expired token, a token not valid yet. In
//! every mode each is 401 `invalid_token`, nothing is forwarded, and the refusal is not cached as active.
//! And a client-credentials token (no resource owner) reaches the upstream with its client as `sub`
//! (RFC 9068 §2.2), under which the admin API purges it.

use crate::answer::{Answer, Expect, INVALID_TOKEN};
use crate::support::{claims_of, client, forwarded_jwt, Env};
use serde_json::{json, Map, Value};
use shroud::config::ResponseMode::{self, Json, Jwt, Rfc9701};
use shroud::secret::Secret;
use shroud_testkit::TokenSpec;
use std::time::{SystemTime, UNIX_EPOCH};

/// The token is refused.
const TOKEN_REFUSED: Expect = Expect::bearer(401, "invalid_token", INVALID_TOKEN);

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An active token whose answer carries `extra` (which overrides the standard members).
fn with(extra: Value) -> TokenSpec {
    let mut spec = TokenSpec::active("alice", "read", 3600);
    spec.extra = extra.as_object().cloned().unwrap_or_else(Map::new);
    spec
}

/// One answer that must not let a token pass.
pub struct Case {
    /// What the answer is.
    pub name: &'static str,
    /// The modes it applies to.
    pub modes: &'static [ResponseMode],
    /// The token as the authorization server describes it.
    pub spec: fn() -> TokenSpec,
}

/// The cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "answer: a refresh token as node-oidc-provider answers it (no token_type, no aud)",
            modes: &[Json, Rfc9701],
            spec: || TokenSpec::refresh_token("alice", "webapp", "openid read", "sid-1", 86_400),
        },
        Case {
            name: "answer: active without token_type",
            modes: &[Json, Rfc9701],
            spec: || TokenSpec { token_type: None, ..TokenSpec::active("alice", "read", 300) },
        },
        Case {
            name: "answer: token_type of an unknown kind",
            modes: &[Json, Rfc9701],
            spec: || TokenSpec { token_type: Some("N_A".into()), ..TokenSpec::active("alice", "read", 300) },
        },
        Case {
            name: "answer: Keycloak's typ Refresh",
            modes: &[Json, Rfc9701, Jwt],
            spec: || with(json!({"typ": "Refresh"})),
        },
        Case {
            name: "answer: Keycloak's typ Offline",
            modes: &[Json, Rfc9701, Jwt],
            spec: || with(json!({"typ": "Offline"})),
        },
        Case {
            name: "answer: Ory Hydra's token_use refresh_token, with token_type Bearer",
            modes: &[Json, Rfc9701, Jwt],
            spec: || with(json!({"token_use": "refresh_token"})),
        },
        Case {
            name: "answer: Curity's purpose refresh_token",
            modes: &[Json, Rfc9701, Jwt],
            spec: || with(json!({"purpose": "refresh_token"})),
        },
        Case {
            name: "answer: active, but expired 60 s ago (beyond the leeway)",
            modes: &[Json, Rfc9701, Jwt],
            spec: || TokenSpec { exp: None, ..with(json!({"exp": now() - 60})) },
        },
        Case {
            name: "answer: active, but not valid for another 10 minutes (nbf)",
            modes: &[Json, Rfc9701, Jwt],
            spec: || with(json!({"nbf": now() + 600})),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_for_anything_but_a_current_access_token_are_401() {
    for mode in [Json, Rfc9701, Jwt] {
        let env = Env::new(mode);
        for (i, case) in cases().iter().enumerate().filter(|(_, c)| c.modes.contains(&mode)) {
            let token = format!("token-{i}");
            env.idp.issue(&token, (case.spec)());
            let name = format!("{mode:?}: {}", case.name);
            let before = env.idp.introspections();
            Answer::read(env.get("/api/x", Some(&token)).await).await.assert(&name, &TOKEN_REFUSED);
            assert_eq!(env.idp.introspections(), before + 1, "{name}: introspected once");
            // Never cached as active: asked again, it is still refused.
            Answer::read(env.get("/api/x", Some(&token)).await).await.assert(&name, &TOKEN_REFUSED);
            assert_eq!(env.api.hits(), 0, "{name}: nothing reached the upstream");
        }
        // Control: an access token as the server answers it passes.
        env.idp.issue("good", TokenSpec::active("alice", "read", 300));
        assert_eq!(env.get("/api/x", Some("good")).await.status(), 200, "{mode:?}: control");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opt_out_accepts_answers_without_token_type_but_never_refresh_tokens() {
    let env = Env::with(Json, |mut c| {
        c.introspection.token_types = vec!["*".into()];
        c
    });
    env.idp.issue("no-type", TokenSpec { token_type: None, ..TokenSpec::active("alice", "read", 300) });
    assert_eq!(env.get("/api/x", Some("no-type")).await.status(), 200, "no evidence asked for");
    env.idp.issue("keycloak-refresh", with(json!({"typ": "Refresh"})));
    let answer = Answer::read(env.get("/api/x", Some("keycloak-refresh")).await).await;
    answer.assert("opt-out: a token that says it is a refresh token", &TOKEN_REFUSED);
    assert_eq!(env.api.hits(), 1);
}

const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_has_its_client_as_sub_and_is_purged_by_it() {
    for mode in [Json, Rfc9701, Jwt] {
        let env = Env::with(mode, |mut c| {
            c.admin.listen = "127.0.0.1:0".into();
            c.admin.token = Secret::new(ADMIN_TOKEN);
            c
        });
        // A client-credentials token: no resource owner, so no `sub` in the answer.
        let spec =
            TokenSpec { sub: None, client_id: Some("demo-client".into()), ..TokenSpec::active("x", "read", 300) };
        env.idp.issue("cc-token", spec);
        assert_eq!(env.get("/api/x", Some("cc-token")).await.status(), 200, "{mode:?}");
        if mode != Jwt {
            let claims = claims_of(&forwarded_jwt(&env.api));
            assert_eq!(claims["sub"], "demo-client", "{mode:?}: RFC 9068 §2.2: sub is the client");
            assert_eq!(claims["client_id"], "demo-client", "{mode:?}");
        }
        // Cached: revoking it at the server changes nothing until it is purged by its `sub`.
        env.idp.revoke("cc-token");
        assert_eq!(env.get("/api/x", Some("cc-token")).await.status(), 200, "{mode:?}: served from the cache");
        let admin = format!("http://{}/purge", env.shroud.admin_addr.unwrap());
        let resp =
            client().post(admin).bearer_auth(ADMIN_TOKEN).json(&json!({"sub": "demo-client"})).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{mode:?}");
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"purged": 1}),
            "{mode:?}: purged by the client id as sub"
        );
        let answer = Answer::read(env.get("/api/x", Some("cc-token")).await).await;
        answer.assert(&format!("{mode:?}: purged, then refused"), &TOKEN_REFUSED);
        assert_eq!(env.api.hits(), 2, "{mode:?}");
    }
}
