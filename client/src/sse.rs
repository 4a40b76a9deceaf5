//! A Server-Sent Events reader for `GET /v1/events`: an incremental parser of the
//! `text/event-stream` format (pure, fed with byte chunks) and the stream that feeds it.

use crate::ClientError;
use std::collections::VecDeque;

/// One event of a `text/event-stream`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerEvent {
    /// The `id:` field, when sent.
    pub id: Option<String>,
    /// The `event:` field (the event type), when sent.
    pub event: Option<String>,
    /// The `data:` lines joined with newlines. Fleetplane sends one CloudEvents JSON object.
    pub data: String,
}

impl ServerEvent {
    /// The data decoded as JSON.
    ///
    /// # Errors
    /// The `serde_json` error when the data is not JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.data)
    }
}

/// Incremental parser of the event-stream format (WHATWG HTML, "Server-sent events"): feed it
/// bytes as they arrive, take whole events out.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The last byte seen was a `\r`, so a following `\n` belongs to the same line end.
    after_cr: bool,
    /// The event being assembled.
    current: ServerEvent,
    /// Whether any `data:` line was seen for the current event.
    has_data: bool,
    /// Events complete and not yet taken.
    ready: VecDeque<ServerEvent>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes a chunk of the stream (any split, even inside a UTF-8 character).
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.end_line(&String::from_utf8_lossy(&line));
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<ServerEvent> {
        self.ready.pop_front()
    }

    fn end_line(&mut self, line: &str) {
        if line.is_empty() {
            if self.has_data {
                let mut event = std::mem::take(&mut self.current);
                if event.data.ends_with('\n') {
                    event.data.pop();
                }
                self.ready.push_back(event);
            } else {
                self.current = ServerEvent::default();
            }
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.current.data.push_str(value);
                self.current.data.push('\n');
                self.has_data = true;
            }
            "event" => self.current.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.current.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields: the reader does not reconnect by itself
        }
    }
}

/// The events of an open `GET /v1/events` stream. Ends when the server closes it.
#[derive(Debug)]
pub struct EventStream {
    pub(crate) response: reqwest::Response,
    pub(crate) parser: SseParser,
    pub(crate) url: String,
}

impl EventStream {
    /// Waits for the next event; `None` when the server closed the stream.
    ///
    /// # Errors
    /// [`ClientError::Transport`] when the connection breaks.
    pub async fn next(&mut self) -> Option<Result<ServerEvent, ClientError>> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Some(Ok(event));
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.parser.feed(&bytes),
                Ok(None) => return None,
                Err(source) => {
                    return Some(Err(ClientError::Transport {
                        url: self.url.clone(),
                        source,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<ServerEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c);
            while let Some(e) = p.next_event() {
                out.push(e);
            }
        }
        out
    }

    fn ev(id: Option<&str>, event: Option<&str>, data: &str) -> ServerEvent {
        ServerEvent {
            id: id.map(Into::into),
            event: event.map(Into::into),
            data: data.into(),
        }
    }

    #[test]
    fn parses_the_format() {
        let cases: &[(&[u8], Vec<ServerEvent>)] = &[
            (b"data: {\"a\":1}\n\n", vec![ev(None, None, "{\"a\":1}")]),
            (
                b"id: 7\nevent: change\ndata: x\n\n",
                vec![ev(Some("7"), Some("change"), "x")],
            ),
            (b"data: a\ndata: b\n\n", vec![ev(None, None, "a\nb")]),
            (b": keep-alive\n\ndata:x\r\n\r\n", vec![ev(None, None, "x")]),
            (
                b"data: one\r\rdata: two\n\n",
                vec![ev(None, None, "one"), ev(None, None, "two")],
            ),
            (b"event: only\n\ndata: x\n\n", vec![ev(None, None, "x")]),
            (b"data: not finished\n", vec![]),
            (b"retry: 10\ndata\n\n", vec![ev(None, None, "")]),
        ];
        for (input, want) in cases {
            assert_eq!(
                &parse_all(&[input]),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    proptest! {
        /// Where the chunks are cut never changes the events.
        #[test]
        fn chunking_does_not_matter(cuts in proptest::collection::vec(0usize..60, 0..6)) {
            let input = "id: 1\ndata: {\"é\": \"ü\"}\r\n\r\n: c\ndata: a\ndata: b\n\n".as_bytes();
            let whole = parse_all(&[input]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for c in cuts {
                chunks.push(&input[start..c]);
                start = c;
            }
            chunks.push(&input[start..]);
            prop_assert_eq!(parse_all(&chunks), whole);
        }
    }
}
