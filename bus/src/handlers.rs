//! Message handlers: plain functions that see every incoming message first (dbus-fast's
//! `add_message_handler`). No async here: a handler runs inside the reader and must return
//! quickly; to do slow work, spawn a task from it. A handler that panics is treated as
//! dbus-fast treats one that raises: a method call gets an `org.freedesktop.DBus.Error.Failed`
//! reply, any other message goes on to the next handler; the connection lives on.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fastbus_wire::{Message, MessageType};

use crate::connection::lock;
use crate::error::names;

/// What a message handler did with a message.
// Returned once per message and consumed at once: boxing the reply would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum HandlerResult {
    /// Not handled: later handlers and the normal routing see it.
    NotHandled,
    /// Handled: no later handler runs, and a method call is not routed to exported objects
    /// (so no `UnknownMethod` reply is sent for it). A reply still completes the call that
    /// awaits it and a signal still reaches the subscriptions that match it: handlers observe
    /// those, they cannot swallow them.
    Handled,
    /// Handled, and this message (usually `Message::method_return(&msg)` or
    /// `Message::error(&msg, ..)`) is sent as the reply; it gets a serial when sent.
    Reply(Message),
}

/// Identifies a handler for [`crate::MessageBus::remove_message_handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

type HandlerFn = Arc<dyn Fn(&Message) -> HandlerResult + Send + Sync>;

/// The handler list: copied on write, read with one lock and one reference count per message
/// (and not even that while the list is empty).
#[derive(Default)]
pub(crate) struct Handlers {
    list: Mutex<Arc<[(HandlerId, HandlerFn)]>>,
    any: AtomicBool,
    next: AtomicU64,
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("count", &lock(&self.list).len())
            .finish()
    }
}

impl Handlers {
    pub(crate) fn add(&self, f: HandlerFn) -> HandlerId {
        let id = HandlerId(self.next.fetch_add(1, Ordering::Relaxed));
        let mut list = lock(&self.list);
        let mut v: Vec<_> = list.iter().cloned().collect();
        v.push((id, f));
        *list = v.into();
        self.any.store(true, Ordering::Release);
        id
    }

    pub(crate) fn remove(&self, id: HandlerId) -> bool {
        let mut list = lock(&self.list);
        let before = list.len();
        let v: Vec<_> = list.iter().filter(|(i, _)| *i != id).cloned().collect();
        let removed = v.len() != before;
        self.any.store(!v.is_empty(), Ordering::Release);
        *list = v.into();
        removed
    }

    /// Runs the handlers in the order they were added until one handles the message.
    pub(crate) fn run(&self, msg: &Message) -> HandlerResult {
        if !self.any.load(Ordering::Acquire) {
            return HandlerResult::NotHandled;
        }
        let list = Arc::clone(&lock(&self.list));
        for (_, h) in list.iter() {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(msg))) {
                Ok(HandlerResult::NotHandled) => {}
                Ok(done) => return done,
                // As dbus-fast does with a handler that raises: a method call gets an error
                // reply (and counts as handled); anything else goes on to the next handler.
                Err(panic) if msg.message_type() == MessageType::METHOD_CALL => {
                    let text = format!(
                        "a message handler panicked: {}",
                        crate::export::panic_text(&*panic)
                    );
                    return match Message::error(msg, names::FAILED, &text).build() {
                        Ok(reply) if msg.expects_reply() => HandlerResult::Reply(reply),
                        _ => HandlerResult::Handled,
                    };
                }
                Err(_) => {}
            }
        }
        HandlerResult::NotHandled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message::method_call("/a", "M").serial(1).build().unwrap()
    }

    #[test]
    fn first_handler_that_handles_wins_and_removal_works() {
        let h = Handlers::default();
        assert!(matches!(h.run(&msg()), HandlerResult::NotHandled));
        let a = h.add(Arc::new(|_| HandlerResult::NotHandled));
        let b = h.add(Arc::new(|_| HandlerResult::Handled));
        let _c = h.add(Arc::new(|m| {
            HandlerResult::Reply(Message::method_return(m).build().unwrap())
        }));
        assert!(matches!(h.run(&msg()), HandlerResult::Handled));
        assert!(h.remove(b));
        assert!(!h.remove(b));
        assert!(matches!(h.run(&msg()), HandlerResult::Reply(_)));
        assert!(h.remove(a));
    }
}
