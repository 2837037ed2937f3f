//! The worker's side (`kb-parser parse-worker`): one request on stdin, one answer on stdout,
//! then exit. Nothing else is written to stdout; a panic is answered as `panicked`, anything
//! worse (an abort, running out of its memory limit, a signal) leaves no answer and the exit
//! status tells the parser.

use std::io::Write;
use std::panic::AssertUnwindSafe;

use kb_stream::DeadLetterKind;

use super::wire;
use crate::runner::{panic_text, parse_document, ParseFailure};

/// Serves one parse over stdin and stdout.
pub fn serve_stdio() -> anyhow::Result<()> {
    // Failpoints come from the parser in KB_FAILPOINTS (tests); a bad spec is an error.
    kb_core::failpoint::init()?;
    let request = wire::read_request(&mut std::io::stdin().lock())?;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        parse_document(&request.source, &request.bytes, &request.options)
    }));
    let result = match result {
        Ok(parsed) => parsed.map_err(ParseFailure::from),
        Err(panic) => Err(ParseFailure::new(
            DeadLetterKind::Panicked,
            format!("the parser panicked: {}", panic_text(&*panic)),
        )),
    };
    drop(request);
    let mut out = std::io::stdout().lock();
    out.write_all(&wire::encode_response(&result))?;
    out.flush()?;
    Ok(())
}
