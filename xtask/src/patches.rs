//! A defect of miniflare's local Queue broker (the simulator `wrangler dev`
//! runs the Queues on; nothing of it is deployed), patched after `npm ci`.
//!
//! The broker's `#flush` dispatches a batch, then awaits a log call to the
//! Node process, and only then clears its pending flush and schedules the
//! next one. When anything after the dispatch throws (seen under load: the
//! consumer's work was done and stored, its `QUEUE …` log line never came),
//! the pending flush is never cleared, so the queue dispatches nothing again
//! and every later message waits forever — the "local Queue stall" of the
//! load and cost benchmarks and of an end-to-end run on a loaded machine.
//! The patch catches that, logs it and lets the queue go on; the platform's
//! Queues have no such state (a consumer that fails is retried).
//!
//! Applied only to the exact text of the pinned version; any other text is
//! an error, so an upgrade has to look at this again.

use crate::proc::{root, step};
use crate::Result;

const BROKER: &str = "node_modules/miniflare/dist/src/workers/queues/broker.worker.js";
const MARK: &str = "/* sluice: flush guarded */";
const FLUSH: &str = "  #flush = async () => {\n    let consumer = this.#maybeConsumer;";
const GUARDED: &str = "  #flush = async () => { /* sluice: flush guarded */\n    try {\n      await this.#flushOnce();\n    } catch (e) {\n      console.error(`sluice: the local queue ${this.name} recovered a failed flush: ${e}`);\n      this.#pendingFlush = void 0;\n      this.#messages.length > 0 && this.#ensurePendingFlush();\n    }\n  };\n  #flushOnce = async () => {\n    let consumer = this.#maybeConsumer;";

/// Guard the broker's flush (idempotent).
pub fn local_queue() -> Result<()> {
    let path = root().join(BROKER);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    match patched(&text)? {
        None => Ok(()),
        Some(new) => {
            step("patching miniflare's local Queue broker (a flush that throws stalled the queue)");
            std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

/// The patched text, `None` if it is patched already.
fn patched(text: &str) -> Result<Option<String>> {
    if text.contains(MARK) {
        return Ok(None);
    }
    if text.matches(FLUSH).count() != 1 {
        return Err(format!(
            "{BROKER} is not the version xtask/src/patches.rs knows: look at its #flush again"
        ));
    }
    Ok(Some(text.replacen(FLUSH, GUARDED, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_is_guarded_once_and_an_unknown_version_is_refused() {
        let original = format!("class B {{\n{FLUSH}\n    work();\n  }};\n}}\n");
        let once = patched(&original).unwrap().unwrap();
        assert!(once.contains(
            "#flushOnce = async () => {\n    let consumer = this.#maybeConsumer;\n    work();"
        ));
        assert!(once.contains("await this.#flushOnce();"));
        assert_eq!(patched(&once).unwrap(), None, "idempotent");
        assert!(patched("class B {}").is_err());
    }
}
