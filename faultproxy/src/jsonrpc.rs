//! Just enough JSON for `Mode::StaleReads`: a strict scanner that checks a request body
//! is JSON and picks out, for the object (or for each object of the batch), the top-level
//! `"method"` string and the raw text of `"id"`. Nothing else is kept: other members and
//! nested values are checked and skipped.
//!
//! Anything it cannot read exactly (not UTF-8, bad syntax, a lone surrogate, nesting
//! deeper than [`MAX_DEPTH`], a `"method"` or `"id"` given twice) is `None`, and the
//! proxy forwards such a body unchanged: it is the upstream's to reject.

/// The lookups a lagging read backend answers as if the transaction were unknown.
pub(crate) const LOOKUPS: [&str; 2] = ["eth_getTransactionReceipt", "eth_getTransactionByHash"];

/// The call that broadcasts a signed transaction.
pub(crate) const RAW_TRANSACTION: &str = "eth_sendRawTransaction";

/// Nesting beyond this is refused rather than recursed into (the body comes from the
/// network; the thread's stack is finite).
pub(crate) const MAX_DEPTH: usize = 128;

/// One call: a whole body, or one element of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    /// The call's JSON text, exactly as sent.
    pub(crate) raw: &'a [u8],
    /// The top-level `"method"`, decoded, when the call is an object and it is a string.
    pub(crate) method: Option<String>,
    /// The raw text of the top-level `"id"` (any JSON value), when the call has one.
    pub(crate) id: Option<&'a [u8]>,
}

impl<'a> Call<'a> {
    /// The id of a transaction lookup that expects an answer: the proxy answers it `null`
    /// itself. (A lookup without an id is a notification: nothing to answer, so it is
    /// forwarded.)
    pub(crate) fn stale_id(&self) -> Option<&'a [u8]> {
        let lookup = self
            .method
            .as_deref()
            .is_some_and(|method| LOOKUPS.contains(&method));
        self.id.filter(|_| lookup)
    }

    pub(crate) fn is_stale(&self) -> bool {
        self.stale_id().is_some()
    }

    /// Whether it is an `eth_sendRawTransaction` (a notification, without an id, too:
    /// the upstream broadcasts it all the same).
    pub(crate) fn is_raw_transaction(&self) -> bool {
        self.method.as_deref() == Some(RAW_TRANSACTION)
    }
}

/// A parsed body: one call or a batch (a JSON array) of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    Single(Call<'a>),
    Batch(Vec<Call<'a>>),
}

/// Reads a body; `None` if it is not exactly one JSON value.
pub(crate) fn parse(text: &[u8]) -> Option<Body<'_>> {
    // Checked once here, so that every string decoded below is valid UTF-8 by slicing.
    std::str::from_utf8(text).ok()?;
    let mut scanner = Scanner { text, at: 0 };
    scanner.whitespace();
    let body = if scanner.peek() == Some(b'[') {
        let mut calls = Vec::new();
        scanner.elements(|scanner| {
            calls.push(scanner.call(1)?);
            Some(())
        })?;
        Body::Batch(calls)
    } else {
        Body::Single(scanner.call(0)?)
    };
    scanner.end().then_some(body)
}

/// `{"jsonrpc":"2.0","id":<id>,"result":null}`, the id copied verbatim.
pub(crate) fn null_answer(id: &[u8]) -> Vec<u8> {
    [br#"{"jsonrpc":"2.0","id":"#, id, br#","result":null}"#].concat()
}

/// The answer to a batch: for each call in order, `null` for a stale one, else the
/// upstream's answer with the same id (`answers`, the upstream's answer to the batch of
/// the calls that were not stale); then whatever upstream answers matched no call (an
/// error with id `null`, say), in the upstream's order. `None` if `answers` is neither
/// empty (a batch of notifications has no answer) nor a JSON array.
pub(crate) fn merge(calls: &[Call<'_>], answers: &[u8]) -> Option<Vec<u8>> {
    let mut pool: Vec<Option<Call<'_>>> = if answers.trim_ascii().is_empty() {
        Vec::new()
    } else {
        match parse(answers)? {
            Body::Batch(answers) => answers.into_iter().map(Some).collect(),
            Body::Single(_) => return None,
        }
    };
    let mut merged: Vec<Vec<u8>> = Vec::new();
    for call in calls {
        let Some(id) = call.id else { continue }; // a notification: no answer
        if let Some(id) = call.stale_id() {
            merged.push(null_answer(id));
            continue;
        }
        let key = id_key(id);
        // The first unused answer with this id: two calls with one id get one answer each.
        let found = pool.iter_mut().find(|answer| {
            answer
                .as_ref()
                .and_then(|answer| answer.id)
                .is_some_and(|answer_id| id_key(answer_id) == key)
        });
        if let Some(answer) = found.and_then(Option::take) {
            merged.push(answer.raw.to_vec());
        }
    }
    merged.extend(pool.into_iter().flatten().map(|answer| answer.raw.to_vec()));
    Some([b"[".as_slice(), &merged.join(b",".as_slice()), b"]"].concat())
}

/// What makes two ids the same: a string by its decoded text (the upstream may escape
/// it differently), any other value by its text.
fn id_key(raw: &[u8]) -> Vec<u8> {
    let mut scanner = Scanner { text: raw, at: 0 };
    match scanner.string() {
        Some(text) if scanner.end() => [b"s".as_slice(), text.as_bytes()].concat(),
        _ => [b"v".as_slice(), raw].concat(),
    }
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let eaten = self.peek() == Some(byte);
        if eaten {
            self.at += 1;
        }
        eaten
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Only whitespace is left.
    fn end(&mut self) -> bool {
        self.whitespace();
        self.at == self.text.len()
    }

    /// One call: any value, with `"method"` and `"id"` picked out if it is an object.
    fn call(&mut self, depth: usize) -> Option<Call<'a>> {
        let start = self.at;
        if self.peek() != Some(b'{') {
            self.value(depth)?;
            let raw = &self.text[start..self.at];
            return Some(Call {
                raw,
                method: None,
                id: None,
            });
        }
        let mut method: Option<Option<String>> = None;
        let mut id = None;
        self.members(|scanner, key| {
            let value_start = scanner.at;
            match key.as_str() {
                "method" if method.is_some() => return None,
                "id" if id.is_some() => return None,
                "method" => {
                    // A method that is not a string is no lookup (nor valid JSON-RPC):
                    // the call is forwarded and the upstream says so.
                    method = Some(if scanner.peek() == Some(b'"') {
                        Some(scanner.string()?)
                    } else {
                        scanner.value(depth + 1)?;
                        None
                    });
                }
                "id" => {
                    scanner.value(depth + 1)?;
                    id = Some(&scanner.text[value_start..scanner.at]);
                }
                _ => scanner.value(depth + 1)?,
            }
            Some(())
        })?;
        Some(Call {
            raw: &self.text[start..self.at],
            method: method.flatten(),
            id,
        })
    }

    /// Checks and skips one value.
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.members(|scanner, _| scanner.value(depth + 1)),
            b'[' => self.elements(|scanner| scanner.value(depth + 1)),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// An object, the scanner on its `{`: `member` reads each member's value, the scanner
    /// on it, given the decoded key.
    fn members(&mut self, mut member: impl FnMut(&mut Self, String) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        self.whitespace();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.whitespace();
            let key = self.string()?;
            self.whitespace();
            self.expect(b':')?;
            self.whitespace();
            member(self, key)?;
            self.whitespace();
            if self.eat(b'}') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    /// An array, the scanner on its `[`: `element` reads each element, the scanner on it.
    fn elements(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        self.whitespace();
        if self.eat(b']') {
            return Some(());
        }
        loop {
            self.whitespace();
            element(self)?;
            self.whitespace();
            if self.eat(b']') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let found = self.text.get(self.at..)?.starts_with(word);
        found.then(|| self.at += word.len())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        if !self.eat(b'0') {
            if !matches!(self.peek(), Some(b'1'..=b'9')) {
                return None;
            }
            self.digits();
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// A string, decoded: the scanner must be on its opening quote.
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut text = String::new();
        loop {
            let start = self.at;
            while !matches!(self.peek()?, b'"' | b'\\' | 0x00..=0x1f) {
                self.at += 1;
            }
            // The body was checked to be UTF-8 and quotes and backslashes are ASCII, so
            // this run between them is whole characters.
            text.push_str(std::str::from_utf8(&self.text[start..self.at]).ok()?);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(text);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek()?;
                    self.at += 1;
                    text.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    });
                }
                _ => return None, // a raw control character: JSON wants it escaped
            }
        }
    }

    /// The rest of a `\u` escape (its four hex digits, and the low half of a surrogate
    /// pair's); a lone surrogate is refused, as serde_json refuses it.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                self.expect(b'\\')?;
                self.expect(b'u')?;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            _ => first,
        };
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        let digits = std::str::from_utf8(digits).ok()?;
        // from_str_radix takes a leading sign: JSON does not.
        if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }
}
