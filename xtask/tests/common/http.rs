//! Test servers on 127.0.0.1: the accept loop they share, and a small HTTP/1.1 server for the script tests'
//! curl with fixed answers per path.

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

/// An accept loop on a listener of 127.0.0.1 that hands each connection to `handle` on its own thread,
/// with a flag that tells handlers the server is going away. Stopped (and joined) on drop.
pub struct Acceptor {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Acceptor {
    pub fn spawn<F>(listener: TcpListener, handle: F) -> Acceptor
    where
        F: Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    {
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let accept = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let (handle, stop) = (Arc::clone(&handle), Arc::clone(&stop));
                        thread::spawn(move || handle(stream, &stop));
                    }
                }
            }
        });
        Acceptor {
            port,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A small HTTP/1.1 server on 127.0.0.1 for curl to talk to: each route answers a fixed status and body,
/// any other path 404, and `/hang` reads the request and never answers. Stopped on drop.
pub struct HttpServer(Acceptor);

type Route = (String, u16, String);

impl HttpServer {
    pub fn start(routes: &[(&str, u16, &str)]) -> HttpServer {
        let routes: Vec<Route> = routes
            .iter()
            .map(|&(path, status, body)| (path.to_owned(), status, body.to_owned()))
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        HttpServer(Acceptor::spawn(listener, move |stream, stop| {
            Self::respond(stream, &routes, stop)
        }))
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
        format!("http://127.0.0.1:{}{path}", self.0.port)
    }
}
