//! Demo peers for Shroud: a fake authorization server and an echo upstream API.
//!
//! ```text
//! shroud-demo-peers --issuer-addr 127.0.0.1:9090 --upstream-addr 127.0.0.1:7001
//! ```
//!
//! Runs until interrupted (Ctrl-C).

use std::net::SocketAddr;

use clap::Parser;
use shroud_testkit::{Discovery, EchoUpstream, FakeAs, FakeAsOptions, TokenSpec};

/// Command-line options of the demo peers.
#[derive(Parser, Debug)]
#[command(name = "shroud-demo-peers", about = "Fake authorization server and echo upstream for trying Shroud locally")]
struct Args {
    /// Address of the fake authorization server (its URL is the issuer).
    #[arg(long, default_value = "127.0.0.1:9090")]
    issuer_addr: SocketAddr,
    /// Address of the echo upstream API.
    #[arg(long, default_value = "127.0.0.1:7001")]
    upstream_addr: SocketAddr,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();

    let issuer = FakeAs::start_with(FakeAsOptions {
        addr: Some(args.issuer_addr),
        alg: "ES256",
        client_id: "gateway".to_string(),
        client_secret: "gateway-secret".to_string(),
        discovery: Discovery::Both,
        ..Default::default()
    });
    let upstream = EchoUpstream::start_on(args.upstream_addr);
    issuer.issue("demo-token-read", TokenSpec::active("demo-user", "read", 24 * 3600));

    let as_url = issuer.url();
    println!("Fake authorization server: {as_url}  (issuer; OIDC and RFC 8414 discovery)");
    println!("  introspecting client:    gateway / gateway-secret");
    println!("  JWKS:                    {as_url}/jwks");
    println!("  web client (code flow):  webapp / webapp-secret, redirect_uri http://127.0.0.1:8080/callback");
    println!("                           (logs in user \"alice\" without asking)");
    println!("Echo upstream API:         {}", upstream.url());
    println!();
    println!("A ready-made opaque token: demo-token-read  (sub demo-user, scope read, 1 day)");
    println!();
    println!("Get a fresh opaque token (client credentials):");
    println!(
        "  curl -s -u demo-client:demo-client-secret -d grant_type=client_credentials -d scope=read {as_url}/token"
    );
    println!();
    println!("Call the API through Shroud (listening on 127.0.0.1:8080):");
    println!("  curl -s -H 'Authorization: Bearer demo-token-read' http://127.0.0.1:8080/api/hello");
    println!();
    println!("Press Ctrl-C to stop.");

    // The servers run on their own threads; the process ends on Ctrl-C (SIGINT).
    loop {
        std::thread::park();
    }
}
