//! Forged JWTs, in the two modes that verify them. In `jwt` mode the access token itself is the
//! authorization server's JWT: a forged one is an unusable token, 401 `invalid_token`. In `rfc9701` mode
//! the JWT is the introspection answer addressed to Shroud: a forged one is a server-side fault, 502
//! `authorization_server_error`, never the client's 401. Either way nothing is forwarded, and no key is
//! ever fetched from a URL a header names: the attacker's key host sees no request.

use crate::answer::{Answer, Expect, INVALID_TOKEN};
use crate::support::Env;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use shroud::config::ResponseMode::{self, Json, Jwt, Rfc9701};
use shroud_testkit::{Behaviour, EchoUpstream, ForeignKey, Tamper};

/// What is forged.
#[derive(Debug, Clone)]
pub enum Forgery {
    /// The authorization server's JWT for a genuine token, tampered with.
    Answer(Tamper),
    /// A self-made JWT (`alg` as given, claims of a privileged user) sent as the bearer token itself; the
    /// authorization server never issued it.
    Bearer(&'static str),
}

/// One forged JWT.
pub struct Case {
    /// What the attack is.
    pub name: &'static str,
    /// The introspection mode it runs in.
    pub mode: ResponseMode,
    /// The forgery.
    pub forgery: Forgery,
    /// What Shroud must answer.
    pub expect: Expect,
}

/// `jwt` mode: the access token is refused.
const TOKEN_REFUSED: Expect = Expect::bearer(401, "invalid_token", INVALID_TOKEN);
/// `rfc9701` mode: the answer addressed to Shroud is refused.
const ANSWER_REFUSED: Expect = Expect::json(502, "authorization_server_error");

fn case(name: &'static str, mode: ResponseMode, tamper: Tamper, expect: Expect) -> Case {
    Case { name, mode, forgery: Forgery::Answer(tamper), expect }
}

/// The cases; `attacker` is the base URL of the attacker's key host.
pub fn cases(attacker: &str) -> Vec<Case> {
    let jku = || Tamper::ForeignKey(ForeignKey::Jku(format!("{attacker}/jwks.json")));
    let x5u = || Tamper::ForeignKey(ForeignKey::X5u(format!("{attacker}/cert.pem")));
    let traversal = || Tamper::Kid("../../../../../../etc/passwd".into());
    let sql = || Tamper::Kid("k1' OR '1'='1' --".into());
    let typ = |t: &str| Tamper::Header("typ".into(), t.into());
    let alg = |a: &str| Tamper::Header("alg".into(), a.into());
    let crit = || Tamper::Header("crit".into(), serde_json::json!(["urn:example:must-understand"]));
    let jwk = || Tamper::ForeignKey(ForeignKey::Jwk);
    let x5c = || Tamper::ForeignKey(ForeignKey::X5c);
    vec![
        case("jwt: alg none", Jwt, Tamper::AlgNone, TOKEN_REFUSED),
        case("jwt: HS256 keyed with the issuer's public key PEM", Jwt, Tamper::Hs256WithPublicKey, TOKEN_REFUSED),
        case("jwt: HS256 keyed with the issuer's public JWK", Jwt, Tamper::Hs256WithJwkJson, TOKEN_REFUSED),
        case("jwt: another key under the issuer's kid", Jwt, Tamper::WrongKey, TOKEN_REFUSED),
        case("jwt: unknown kid", Jwt, Tamper::UnknownKid, TOKEN_REFUSED),
        case("jwt: path-traversal kid", Jwt, traversal(), TOKEN_REFUSED),
        case("jwt: SQL-ish kid", Jwt, sql(), TOKEN_REFUSED),
        case("jwt: jku pointing at the attacker's JWKS", Jwt, jku(), TOKEN_REFUSED),
        case("jwt: x5u pointing at the attacker's certificate", Jwt, x5u(), TOKEN_REFUSED),
        case("jwt: jwk header carrying the attacker's key", Jwt, jwk(), TOKEN_REFUSED),
        case("jwt: x5c header carrying the attacker's certificate", Jwt, x5c(), TOKEN_REFUSED),
        case("jwt: signature bytes flipped", Jwt, Tamper::BadSignature, TOKEN_REFUSED),
        case("jwt: alg NONE in capitals, signature kept", Jwt, alg("NONE"), TOKEN_REFUSED),
        case("jwt: alg of another key type (RS256 on the EC key)", Jwt, alg("RS256"), TOKEN_REFUSED),
        case("jwt: crit names an extension nobody understands", Jwt, crit(), TOKEN_REFUSED),
        case("jwt: wrong iss", Jwt, Tamper::WrongIss, TOKEN_REFUSED),
        case("jwt: expired", Jwt, Tamper::Expired, TOKEN_REFUSED),
        case("jwt: no exp", Jwt, Tamper::MissingExp, TOKEN_REFUSED),
        case("jwt: not yet valid (nbf)", Jwt, Tamper::NotYetValid, TOKEN_REFUSED),
        case("jwt: issued in the future (iat)", Jwt, Tamper::FutureIat, TOKEN_REFUSED),
        case("jwt: typ of an introspection answer", Jwt, typ("token-introspection+jwt"), TOKEN_REFUSED),
        case(
            "jwt: typ of an introspection answer, as a media type",
            Jwt,
            typ("application/token-introspection+jwt"),
            TOKEN_REFUSED,
        ),
        case("jwt: typ of a logout token", Jwt, typ("logout+jwt"), TOKEN_REFUSED),
        Case {
            name: "jwt: self-made alg-none JWT as the bearer token",
            mode: Jwt,
            forgery: Forgery::Bearer("none"),
            expect: TOKEN_REFUSED,
        },
        case("rfc9701: alg none", Rfc9701, Tamper::AlgNone, ANSWER_REFUSED),
        case(
            "rfc9701: HS256 keyed with the issuer's public key PEM",
            Rfc9701,
            Tamper::Hs256WithPublicKey,
            ANSWER_REFUSED,
        ),
        case("rfc9701: HS256 keyed with the issuer's public JWK", Rfc9701, Tamper::Hs256WithJwkJson, ANSWER_REFUSED),
        case("rfc9701: another key under the issuer's kid", Rfc9701, Tamper::WrongKey, ANSWER_REFUSED),
        case("rfc9701: unknown kid", Rfc9701, Tamper::UnknownKid, ANSWER_REFUSED),
        case("rfc9701: path-traversal kid", Rfc9701, traversal(), ANSWER_REFUSED),
        case("rfc9701: SQL-ish kid", Rfc9701, sql(), ANSWER_REFUSED),
        case("rfc9701: jku pointing at the attacker's JWKS", Rfc9701, jku(), ANSWER_REFUSED),
        case("rfc9701: x5u pointing at the attacker's certificate", Rfc9701, x5u(), ANSWER_REFUSED),
        case("rfc9701: jwk header carrying the attacker's key", Rfc9701, jwk(), ANSWER_REFUSED),
        case("rfc9701: x5c header carrying the attacker's certificate", Rfc9701, x5c(), ANSWER_REFUSED),
        case("rfc9701: signature bytes flipped", Rfc9701, Tamper::BadSignature, ANSWER_REFUSED),
        case("rfc9701: alg NONE in capitals, signature kept", Rfc9701, alg("NONE"), ANSWER_REFUSED),
        case("rfc9701: alg of another key type (RS256 on the EC key)", Rfc9701, alg("RS256"), ANSWER_REFUSED),
        case("rfc9701: crit names an extension nobody understands", Rfc9701, crit(), ANSWER_REFUSED),
        case("rfc9701: wrong iss", Rfc9701, Tamper::WrongIss, ANSWER_REFUSED),
        case("rfc9701: wrong aud", Rfc9701, Tamper::WrongAud, ANSWER_REFUSED),
        case("rfc9701: typ JWT", Rfc9701, Tamper::TypJwt, ANSWER_REFUSED),
        case("rfc9701: typ of an access token", Rfc9701, typ("at+jwt"), ANSWER_REFUSED),
        case("rfc9701: no iat", Rfc9701, Tamper::MissingIat, ANSWER_REFUSED),
        case("rfc9701: issued in the future (iat)", Rfc9701, Tamper::FutureIat, ANSWER_REFUSED),
        case("rfc9701: not yet valid (nbf)", Rfc9701, Tamper::NotYetValid, ANSWER_REFUSED),
        case("rfc9701: expired answer replayed", Rfc9701, Tamper::Expired, ANSWER_REFUSED),
        case("rfc9701: active is the string \"true\"", Rfc9701, Tamper::ActiveString, ANSWER_REFUSED),
        Case {
            name: "rfc9701: self-made HS256 JWT as the bearer token",
            mode: Rfc9701,
            forgery: Forgery::Bearer("HS256"),
            expect: TOKEN_REFUSED,
        },
    ]
}

/// A JWT nobody issued, claiming an administrator of `issuer`, with `alg` `none` (empty signature) or
/// HS256 under a guessable secret.
fn self_made(alg: &str, issuer: &str) -> String {
    let header = serde_json::json!({ "alg": alg, "typ": "at+jwt" });
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "iss": issuer, "sub": "admin", "scope": "read write admin", "iat": now, "exp": now + 3600,
    });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = match alg {
        "none" => Vec::new(),
        _ => {
            use josekit::jws::{JwsSigner, HS256};
            HS256.signer_from_bytes(b"a guessable secret of 32 bytes!!").unwrap().sign(input.as_bytes()).unwrap()
        }
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn run(mode: ResponseMode) {
    let attacker = EchoUpstream::start();
    let env = Env::new(mode);
    let cases: Vec<Case> = cases(&attacker.url()).into_iter().filter(|c| c.mode == mode).collect();
    assert!(!cases.is_empty() && mode != Json);
    for (i, case) in cases.iter().enumerate() {
        let token = match &case.forgery {
            Forgery::Answer(tamper) => {
                env.idp.set_behaviour(Behaviour { tamper: tamper.clone(), ..Default::default() });
                env.token(&format!("genuine-{i}"), "read")
            }
            Forgery::Bearer(alg) => {
                env.idp.set_behaviour(Behaviour::default());
                self_made(alg, &env.idp.url())
            }
        };
        let (hits, introspections) = (env.api.hits(), env.idp.introspections());
        let answer = Answer::read(env.get("/api/x", Some(&token)).await).await;
        answer.assert(case.name, &case.expect);
        assert_eq!(env.api.hits(), hits, "{}: nothing reached the upstream", case.name);
        assert_eq!(env.idp.introspections(), introspections + 1, "{}: one introspection", case.name);
    }
    assert_eq!(attacker.hits(), 0, "{mode:?}: no key was fetched from a URL a header named");
    // The same environment forwards a genuine token: the refusals above were the forgeries'.
    env.idp.set_behaviour(Behaviour::default());
    let genuine = env.token("control", "read");
    assert_eq!(env.get("/api/x", Some(&genuine)).await.status(), 200, "{mode:?}: control");
    assert_eq!(env.api.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_access_token_jwts_are_401_in_jwt_mode() {
    run(Jwt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_introspection_answers_are_502_in_rfc9701_mode() {
    run(Rfc9701).await;
}
