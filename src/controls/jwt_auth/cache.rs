//! A bounded cache of verified tokens, keyed by the SHA-256 of the token. An entry holds the
//! verified claims and the instant after which the token is no longer valid (exp + skew, or the
//! maximum lifetime); it is never served after that. When full, the oldest entry goes first
//! (evicting a live entry only costs one more verification).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use serde_json::{Map, Value};

/// What a verified token proved.
#[derive(Debug)]
pub struct Verified {
    pub provider: usize,
    /// Unix seconds after which the token is refused (inclusive bound: valid while `now <=`).
    pub valid_until: i64,
    pub claims: Map<String, Value>,
    pub scopes: Vec<String>,
    pub payload_b64: String,
}

pub type Digest32 = [u8; 32];

pub fn digest(token: &str) -> Digest32 {
    digest_bytes(token.as_bytes())
}

pub fn digest_bytes(b: &[u8]) -> Digest32 {
    crate::crypto::sha256(b)
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Digest32, Rc<Verified>>,
    order: VecDeque<Digest32>,
}

#[derive(Debug)]
pub struct Cache {
    max: usize,
    inner: RefCell<Inner>,
}

impl Cache {
    pub fn new(max: usize) -> Self {
        Cache {
            max,
            inner: RefCell::new(Inner::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// A live entry for this token. An expired entry stays until it is evicted or replaced, so
    /// that every key of the map is in `order` exactly once.
    pub fn get(&self, key: &Digest32, now: i64) -> Option<Rc<Verified>> {
        let inner = self.inner.borrow();
        let hit = inner.map.get(key)?;
        (now <= hit.valid_until).then(|| hit.clone())
    }

    pub fn insert(&self, key: Digest32, v: Rc<Verified>, now: i64) {
        if self.max == 0 || now > v.valid_until {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        if inner.map.insert(key, v).is_some() {
            return;
        }
        inner.order.push_back(key);
        while inner.map.len() > self.max {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            inner.map.remove(&old);
        }
    }

    /// Forget everything a provider's keys proved (its key set changed).
    pub fn forget_provider(&self, provider: usize) {
        let mut inner = self.inner.borrow_mut();
        inner.map.retain(|_, v| v.provider != provider);
        let Inner { map, order } = &mut *inner;
        order.retain(|k| map.contains_key(k));
    }

    pub fn len(&self) -> usize {
        self.inner.borrow().map.len()
    }
}
