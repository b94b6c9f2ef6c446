//! A small HTTP/1.1 server for the script tests' curl: fixed answers per path.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

/// A small HTTP/1.1 server on 127.0.0.1 for curl to talk to: each route answers a fixed status and body,
/// any other path 404, and `/hang` reads the request and never answers. Stopped on drop.
pub struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

type Route = (String, u16, String);

impl HttpServer {
    pub fn start(routes: &[(&str, u16, &str)]) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Vec<Route>> = Arc::new(
            routes
                .iter()
                .map(|&(path, status, body)| (path.to_owned(), status, body.to_owned()))
                .collect(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let accept = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let (routes, stop) = (Arc::clone(&routes), Arc::clone(&stop));
                        thread::spawn(move || Self::respond(stream, &routes, &stop));
                    }
                }
            }
        });
        HttpServer {
            port,
            stop,
            accept: Some(accept),
        }
    }

    fn respond(mut stream: TcpStream, routes: &[Route], stop: &AtomicBool) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut request = Vec::new();
        let mut buffer = [0; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let request = String::from_utf8_lossy(&request);
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        if path == "/hang" {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        let (status, body) = routes
            .iter()
            .find(|(route, ..)| route == path)
            .map_or((404, "not found"), |(_, status, body)| (*status, body));
        let _ = write!(
            stream,
            "HTTP/1.1 {status} Test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}
