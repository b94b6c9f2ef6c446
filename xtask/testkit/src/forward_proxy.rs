//! A real forward proxy for tests of the environment's proxy settings.

use std::time::{Duration, Instant};

use crate::{tools::Tool, Scratch};

const TINYPROXY: Tool = Tool {
    program: "tinyproxy",
    install: "`apt-get install tinyproxy` (in `nix develop` it is there)",
};

/// tinyproxy on 127.0.0.1 that connects onwards from 127.0.0.2, so a server can tell a proxied connection
/// from a direct one by its source address.
pub struct ForwardProxy {
    child: std::process::Child,
    pub url: String,
    log: std::path::PathBuf,
    _scratch: Scratch,
}

impl ForwardProxy {
    pub const SOURCE: std::net::IpAddr =
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    pub fn start() -> ForwardProxy {
        TINYPROXY.require().unwrap();
        let scratch = Scratch::new("tinyproxy");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = scratch.path("tinyproxy.log");
        scratch.write(
            "tinyproxy.conf",
            &format!(
                "Port {port}\nListen 127.0.0.1\nBind {}\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n\
                 LogLevel Connect\nLogFile \"{}\"\n",
                ForwardProxy::SOURCE,
                log.display()
            ),
        );
        let child = std::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(scratch.path("tinyproxy.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ForwardProxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _scratch: scratch,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
