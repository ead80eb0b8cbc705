//! Small networking helpers for tests.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding `127.0.0.1:0`, reading the port the kernel chose and
/// dropping the listener again, so another process could in principle take it in between;
/// callers that need certainty should bind the returned address themselves and retry.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .expect("cannot bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("bound listener has no local address").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("port should be free");
    }
}
