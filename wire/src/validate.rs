//! The fast body check: does a body hold valid values of its signature? One tight walk that
//! answers only yes or no, with the reading position in registers, basic values read inline and
//! a function call only per nested container or variant.
//!
//! It applies every rule that the general, error-reporting walk (`value::skip_value`) applies,
//! in the same way: alignment padding present and zero, BOOLEANs 0 or 1, strings with their NUL
//! and valid UTF-8 without NUL inside, object paths and signatures by their grammars, variant
//! signatures one complete type, array lengths within 64 MiB and the
//! data, arrays ending exactly at their length, fixed-size elements a whole number, 64 levels
//! of nesting counted as the general walk counts them, and no byte left over. A body it refuses
//! is walked again by the general walk, which says what is wrong and where; so the two must
//! agree on what is valid, which the tests check on generated and mutated bodies.

use crate::codec::{MAX_ARRAY_LEN, is_ascii_without_nul};
use crate::signature::{
    MAX_TOTAL_DEPTH, check_signature_bytes, check_single_type, is_basic, is_basic_only,
};
use crate::value::{alignment, bulk_size, type_end};

/// Whether `body` holds exactly the values of `sig` (a valid signature), read in the byte order
/// `big`. `h` values are not compared with the number of file descriptors: as for the general
/// walk, that is checked when the handle is read.
pub(crate) fn body_is_valid(body: &[u8], sig: &[u8], big: bool) -> bool {
    // One walk per byte order, so that reading a number is a load (and a swap), not a branch.
    if big {
        walk_body::<true>(body, sig)
    } else {
        walk_body::<false>(body, sig)
    }
}

/// [`body_is_valid`] in the byte order `BIG`.
fn walk_body<const BIG: bool>(body: &[u8], sig: &[u8]) -> bool {
    let mut w = Walk::<BIG> {
        buf: body,
        pos: 0,
        depth: 0,
    };
    if is_basic_only(sig) {
        // An argument list of basic values (`s`, `su`, `sub`, ...): no containers, so no call
        // and no nesting to count.
        return w.leaves(sig).is_some() && w.pos == body.len();
    }
    let mut i = 0;
    while i < sig.len() {
        if w.one(sig, &mut i).is_none() {
            return false;
        }
    }
    w.pos == body.len()
}

/// The walk's state; `BIG`: the body is big-endian.
struct Walk<'b, const BIG: bool> {
    buf: &'b [u8],
    pos: usize,
    depth: u32,
}

/// Codes read by [`Walk::leaf`]: every basic type.
#[inline(always)]
fn is_leaf(c: u8) -> bool {
    is_basic(c)
}

impl<'b, const BIG: bool> Walk<'b, BIG> {
    /// Skip zero padding up to a multiple of `n` (1, 2, 4 or 8).
    #[inline(always)]
    fn pad(&mut self, n: usize) -> Option<()> {
        let pad = self.pos.wrapping_neg() & (n - 1);
        if pad != 0 {
            // The padding is the last `pad` bytes of the aligned `n`-byte word that ends where
            // it ends: one load and a shift instead of a loop over the bytes.
            let end = self.pos + pad;
            let word = self.buf.get(end - n..end)?;
            let high = match *word {
                [a, b] => u64::from(u16::from_le_bytes([a, b])) >> ((2 - pad) * 8),
                [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])) >> ((4 - pad) * 8),
                [a, b, c, d, e, f, g, h] => {
                    u64::from_le_bytes([a, b, c, d, e, f, g, h]) >> ((8 - pad) * 8)
                }
                _ => return None,
            };
            if high != 0 {
                return None;
            }
            self.pos = end;
        }
        Some(())
    }

    /// `n` bytes, aligned to `n`.
    #[inline(always)]
    fn fixed(&mut self, n: usize) -> Option<&'b [u8]> {
        self.pad(n)?;
        let b = self.buf.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(b)
    }

    #[inline(always)]
    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.fixed(4)?.try_into().ok()?;
        Some(if BIG {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    #[inline(always)]
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_TOTAL_DEPTH).then_some(())
    }

    /// A STRING or OBJECT_PATH's bytes, with its NUL.
    #[inline(always)]
    fn string(&mut self) -> Option<&'b [u8]> {
        let len = self.u32()? as usize;
        let start = self.pos;
        let end = start.checked_add(len)?;
        if *self.buf.get(end)? != 0 {
            return None;
        }
        self.pos = end + 1;
        self.buf.get(start..end)
    }

    /// A SIGNATURE's bytes, with its NUL and none inside.
    #[inline(always)]
    fn signature(&mut self) -> Option<&'b [u8]> {
        let len = usize::from(*self.buf.get(self.pos)?);
        let start = self.pos + 1;
        let s = self.buf.get(start..start + len)?;
        if *self.buf.get(start + len)? != 0 || s.contains(&0) {
            return None;
        }
        self.pos = start + len + 1;
        Some(s)
    }

    /// A variant's signature: one complete type.
    #[inline(always)]
    fn variant_signature(&mut self) -> Option<&'b [u8]> {
        let at = self.pos;
        match self.buf.get(at..at + 3) {
            Some(&[1, c, 0]) if is_basic(c) || c == b'v' => {
                self.pos = at + 3;
                self.buf.get(at + 1..at + 2)
            }
            Some(&[2, b'a', c])
                if (is_basic(c) || c == b'v') && self.buf.get(at + 3) == Some(&0) =>
            {
                self.pos = at + 4;
                self.buf.get(at + 1..at + 3)
            }
            _ => {
                let s = self.signature()?;
                check_single_type(s).is_ok().then_some(s)
            }
        }
    }

    /// A basic value of type `c`. Inlined into the walk in optimised builds; a call of its own
    /// in debug builds, whose unoptimised frames would otherwise hold every branch's locals at
    /// each of the 64 levels of nesting (a test runs the walk on a small stack).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    fn leaf(&mut self, c: u8) -> Option<()> {
        match c {
            b'y' => {
                self.buf.get(self.pos)?;
                self.pos += 1;
            }
            b'n' | b'q' => {
                self.fixed(2)?;
            }
            // `h` too: an index past UNIX_FDS is structurally valid; reading it fails.
            b'i' | b'u' | b'h' => {
                self.fixed(4)?;
            }
            b'x' | b't' | b'd' => {
                self.fixed(8)?;
            }
            b'b' => {
                if self.u32()? > 1 {
                    return None;
                }
            }
            b's' => {
                let s = self.string()?;
                if !is_ascii_without_nul(s) && !text_is_valid(s) {
                    return None;
                }
            }
            b'o' => {
                let s = self.string()?;
                if !crate::names::is_object_path(s) {
                    return None;
                }
            }
            // `g`, the only basic code left.
            _ => {
                let s = self.signature()?;
                check_signature_bytes(s).ok()?;
            }
        }
        Some(())
    }

    /// One basic value of each code of `sig`, which has only basic codes.
    #[inline(always)]
    fn leaves(&mut self, sig: &[u8]) -> Option<()> {
        for &c in sig {
            self.leaf(c)?;
        }
        Some(())
    }

    /// One value of the complete type at `sig[*i..]`.
    #[inline(always)]
    fn one(&mut self, sig: &[u8], i: &mut usize) -> Option<()> {
        let c = *sig.get(*i)?;
        *i += 1;
        if is_leaf(c) {
            self.leaf(c)
        } else if c == b'v' {
            self.variant()
        } else {
            self.container(c, sig, i)
        }
    }

    /// A variant: its signature, then its value one level deeper.
    #[inline(always)]
    fn variant(&mut self) -> Option<()> {
        let inner = self.variant_signature()?;
        self.enter()?;
        match *inner {
            [c] if is_leaf(c) => self.leaf(c)?,
            // `ay`, `as`, `au`, ...: the array walked here, without the call per container.
            [b'a', c] if is_leaf(c) => self.basic_array(c)?,
            _ => self.nested(inner)?,
        }
        self.depth -= 1;
        Some(())
    }

    /// One value of the single complete type `sig` (a variant's, not a basic one).
    #[inline(never)]
    fn nested(&mut self, sig: &[u8]) -> Option<()> {
        let mut i = 0;
        self.one(sig, &mut i)
    }

    /// An array's length and the padding to its elements; the position where they end.
    #[inline(always)]
    fn array_start(&mut self, elem_align: usize) -> Option<usize> {
        let len = self.u32()? as usize;
        if len > MAX_ARRAY_LEN {
            return None;
        }
        self.pad(elem_align)?;
        let end = self.pos + len;
        (end <= self.buf.len()).then_some(end)
    }

    /// An array of fixed-size elements of `size` bytes (structs of numbers when `structs`):
    /// a whole number of them, not walked one by one.
    #[inline(always)]
    fn bulk_array(&mut self, size: usize, structs: bool) -> Option<()> {
        // The levels the element-wise walk counts: the array, and its structs when it has any.
        self.enter()?;
        let stop = self.array_start(size.min(8))?;
        let len = stop - self.pos;
        if !crate::codec::is_whole(len, size) {
            return None;
        }
        self.pos = stop;
        if len != 0 && structs {
            self.enter()?;
            self.depth -= 1;
        }
        self.depth -= 1;
        Some(())
    }

    /// An array of the basic type `c`: a bulk check for fixed-size numbers, else each element.
    #[inline(always)]
    fn basic_array(&mut self, c: u8) -> Option<()> {
        if let Some(size) = bulk_size(&[c]) {
            return self.bulk_array(size, false);
        }
        let stop = self.array_start(alignment(c))?;
        self.enter()?;
        while self.pos < stop {
            self.leaf(c)?;
        }
        if self.pos != stop {
            return None;
        }
        self.depth -= 1;
        Some(())
    }

    /// The entries of an `a{Kv}` until `stop`: key of basic type `k`, then a variant.
    #[inline(always)]
    fn variant_entries(&mut self, k: u8, stop: usize) -> Option<()> {
        while self.pos < stop {
            self.pad(8)?;
            self.enter()?;
            self.leaf(k)?;
            self.variant()?;
            self.depth -= 1;
        }
        Some(())
    }

    /// An array, struct or dict entry of type code `c`; `sig[*i..]` follows `c`.
    #[inline(never)]
    fn container(&mut self, c: u8, sig: &[u8], i: &mut usize) -> Option<()> {
        match c {
            b'a' => {
                let end = type_end(sig, *i);
                let elem = sig.get(*i..end)?;
                *i = end;
                if let [c] = *elem
                    && is_leaf(c)
                {
                    return self.basic_array(c);
                }
                if let Some(size) = bulk_size(elem) {
                    return self.bulk_array(size, elem[0] == b'(');
                }
                let stop = self.array_start(alignment(elem[0]))?;
                self.enter()?;
                match elem {
                    // `a{sv}`, the commonest of all (properties): the variant read directly,
                    // and a string key without the dispatch on its code.
                    [b'{', b's', b'v', b'}'] => self.variant_entries(b's', stop)?,
                    [b'{', k, b'v', b'}'] => self.variant_entries(*k, stop)?,
                    // Other dict entries with a basic key (`a{ss}`, `a{oa{sv}}`, ...): no call
                    // per entry.
                    [b'{', k, rest @ .., b'}'] => {
                        while self.pos < stop {
                            self.pad(8)?;
                            self.enter()?;
                            self.leaf(*k)?;
                            self.one(rest, &mut 0)?;
                            self.depth -= 1;
                        }
                    }
                    _ => {
                        while self.pos < stop {
                            self.one(elem, &mut 0)?;
                        }
                    }
                }
                if self.pos != stop {
                    return None;
                }
                self.depth -= 1;
                Some(())
            }
            b'(' | b'{' => {
                self.pad(8)?;
                self.enter()?;
                while sig.get(*i).is_some_and(|&c| c != b')' && c != b'}') {
                    self.one(sig, i)?;
                }
                *i += 1;
                self.depth -= 1;
                Some(())
            }
            _ => None,
        }
    }
}

/// Whether a string that is not all ASCII is valid UTF-8 without NUL.
#[inline(never)]
fn text_is_valid(s: &[u8]) -> bool {
    std::str::from_utf8(s).is_ok() && !s.contains(&0)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;
    use crate::codec::{Decoder, Encode, Endian, Fd, Variant, to_bytes};
    use crate::names::ObjectPath;
    use crate::signature::{Signature, Type};
    use crate::value::{Value, skip_value};

    /// The general walk's answer, as `Message::decode` asks it when the fast check refuses.
    fn general(body: &[u8], sig: &[u8], big: bool, n_fds: u32) -> bool {
        let endian = if big { Endian::Big } else { Endian::Little };
        let mut dec = Decoder::new(body, endian, n_fds);
        let mut i = 0;
        while i < sig.len() {
            if skip_value(&mut dec, sig, &mut i).is_err() {
                return false;
            }
        }
        dec.finish().is_ok()
    }

    /// Both walks give the same answer; returns it.
    fn agree(body: &[u8], sig: &[u8], big: bool, n_fds: u32) -> bool {
        let fast = body_is_valid(body, sig, big);
        assert_eq!(
            fast,
            general(body, sig, big, n_fds),
            "signature {:?}, {} body {body:02x?}, {n_fds} fds",
            String::from_utf8_lossy(sig),
            if big { "big-endian" } else { "little-endian" },
        );
        fast
    }

    /// A signature, a body of it, and its byte order.
    type Sample = (Vec<u8>, Vec<u8>, bool);

    fn push<T: Encode + Type + ?Sized>(out: &mut Vec<Sample>, v: &T) {
        for big in [false, true] {
            let endian = if big { Endian::Big } else { Endian::Little };
            let bytes = to_bytes(v, endian).expect("sample encodes");
            out.push((T::SIGNATURE.as_bytes().to_vec(), bytes.to_vec(), big));
        }
    }

    /// Valid bodies of every type code and the container shapes the fast walk treats apart
    /// (bulk arrays, `a{..}` with a basic key, variants of one code or an `a` of one code,
    /// variants of anything else).
    fn samples() -> Vec<Sample> {
        let mut out = Vec::new();
        let sig = |s: &str| Signature::new(s).unwrap().into_owned();
        let path = ObjectPath::new("/org/example/a_1").unwrap();
        push(&mut out, &7u8);
        push(&mut out, &true);
        push(&mut out, &-3i16);
        push(&mut out, &9u16);
        push(&mut out, &-70_000i32);
        push(&mut out, &4242u32);
        push(&mut out, &-1i64);
        push(&mut out, &u64::MAX);
        push(&mut out, &1.5f64);
        push(&mut out, &Fd(1));
        push(&mut out, "héllo wörld, a string of some length");
        push(&mut out, "");
        push(&mut out, &path);
        push(&mut out, &sig("a{sv}(ii)ay"));
        push(&mut out, &Value::U32(5));
        push(&mut out, &Value::from("v"));
        push(&mut out, &Variant(vec![1u8, 2, 3]));
        push(&mut out, &Variant(vec!["x", "yz"]));
        push(&mut out, &Variant((1u8, "s", vec![(1i32, 2i32)])));
        push(
            &mut out,
            &Variant(Value::Variant(Box::new(Value::Bool(false)))),
        );
        push(&mut out, &vec![1u8, 0, 255]);
        push(&mut out, &vec![true, false]);
        push(&mut out, &vec![-1i16, 2]);
        push(&mut out, &vec![1i32, 2, 3]);
        push(&mut out, &vec![1u64, 2]);
        push(&mut out, &Vec::<u64>::new());
        push(&mut out, &vec![(1i32, 2i32), (3, 4)]);
        push(&mut out, &Vec::<(i32, i32)>::new());
        push(&mut out, &vec![(1u8, 2u8)]);
        push(&mut out, &vec![(1u8, 2u32)]);
        push(&mut out, &vec![Fd(0), Fd(1)]);
        push(&mut out, &vec![vec![1u8], vec![], vec![2, 3]]);
        push(&mut out, &vec![path.clone()]);
        push(&mut out, &vec![Value::U32(1), Value::from("two")]);
        let props: HashMap<&str, Value> = HashMap::from([
            ("Name", Value::from("Living room")),
            ("Count", Value::U32(4242)),
            ("Active", Value::Bool(true)),
            ("Parent", Value::from(path.clone())),
        ]);
        push(
            &mut out,
            &("org.example.Device1", props.clone(), vec!["Firmware"]),
        );
        push(&mut out, &HashMap::<&str, Value>::new());
        push(&mut out, &BTreeMap::from([(1u8, "one"), (2, "two")]));
        push(&mut out, &BTreeMap::from([(Fd(0), true)]));
        push(&mut out, &BTreeMap::from([("a", props)]));
        push(&mut out, &BTreeMap::from([(path, vec![1i64])]));
        push(
            &mut out,
            &(1u8, true, 2i16, 3u16, 4i32, 5u32, 6i64, 7u64, 8.0f64),
        );
        push(&mut out, &("the quick brown fox", 1_000_000u32, true));
        push(&mut out, &(1u8, (2u32, (3u8, "x"))));
        out
    }

    /// The byte values a mutation puts in place of each byte.
    fn replacements(orig: u8) -> [u8; 14] {
        [
            0,
            1,
            2,
            4,
            0x7f,
            0x80,
            0xff,
            b'a',
            b'(',
            b'{',
            b'v',
            b'/',
            orig ^ 1,
            orig.wrapping_add(1),
        ]
    }

    #[test]
    fn samples_are_valid_for_both_walks() {
        for (sig, body, big) in samples() {
            assert!(
                agree(&body, &sig, big, 2),
                "{:?}",
                String::from_utf8_lossy(&sig)
            );
        }
    }

    /// Every byte of every sample replaced by each of a set of values, every truncation and
    /// two extensions, with 0 and 2 fds: the fast walk accepts exactly what the general
    /// walk accepts.
    #[test]
    fn mutated_bodies_get_the_same_answer_from_both_walks() {
        let mut rejected = 0usize;
        for (sig, body, big) in samples() {
            for n_fds in [0, 2] {
                for i in 0..body.len() {
                    let mut b = body.clone();
                    for r in replacements(body[i]) {
                        b[i] = r;
                        rejected += usize::from(!agree(&b, &sig, big, n_fds));
                    }
                }
                for n in 0..body.len() {
                    agree(&body[..n], &sig, big, n_fds);
                }
                for extra in [&[0u8][..], &[0, 0, 0, 0, 0, 0, 0, 0]] {
                    let b = [&body[..], extra].concat();
                    assert!(!agree(&b, &sig, big, n_fds));
                }
            }
        }
        // The mutations do reach the checks that refuse.
        assert!(rejected > 10_000, "{rejected}");
    }

    /// Each sample body read against every other sample signature.
    #[test]
    fn bodies_read_against_other_signatures_get_the_same_answer() {
        let samples = samples();
        for (_, body, big) in &samples {
            for (sig, _, _) in &samples {
                agree(body, sig, *big, 2);
            }
        }
    }

    /// Variants nested around a byte, and arrays and structs nested around it, at and past
    /// the 64-level limit.
    #[test]
    fn nesting_at_the_limits_gets_the_same_answer() {
        for n in 60..68 {
            let mut body = Vec::new();
            for _ in 0..n {
                body.extend_from_slice(&[1, b'v', 0]);
            }
            body.extend_from_slice(&[1, b'y', 0, 7]);
            let ok = agree(&body, b"v", false, 0);
            assert_eq!(ok, n < 64, "{n} variants");
            // The same chain inside a struct: one level more.
            assert_eq!(
                agree(&body, b"(v)", false, 0),
                n < 63,
                "{n} variants in a struct"
            );
        }
        for n in 28..34 {
            // `a` n deep around `y`: each level one element long, except the innermost.
            let mut sig = b"a".repeat(n);
            sig.push(b'y');
            let mut body = Vec::new();
            for level in 0..n {
                let len = 4 * (n - level - 1) as u32 + 1;
                body.extend_from_slice(&len.to_le_bytes());
            }
            body.push(9);
            agree(&body, &sig, false, 0);
            let mut sig = b"(".repeat(n);
            sig.push(b'y');
            sig.extend(b")".repeat(n));
            agree(&[3], &sig, false, 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(512)))]

        /// Random bytes (mostly small values, so that lengths fit) against each sample
        /// signature.
        #[test]
        fn random_bodies_get_the_same_answer_from_both_walks(
            which in 0usize..1000,
            body in prop::collection::vec(prop_oneof![0u8..4, Just(b'v'), Just(b'a'), any::<u8>()], 0..48),
            big in any::<bool>(),
            n_fds in 0u32..3,
        ) {
            let samples = samples();
            let sig = &samples[which % samples.len()].0;
            agree(&body, sig, big, n_fds);
        }

        /// A sample with a few random bytes overwritten.
        #[test]
        fn randomly_damaged_samples_get_the_same_answer_from_both_walks(
            which in 0usize..1000,
            damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            n_fds in 0u32..3,
        ) {
            let samples = samples();
            let (sig, body, big) = &samples[which % samples.len()];
            let mut body = body.clone();
            if !body.is_empty() {
                for (at, b) in damage {
                    let i = at.index(body.len());
                    body[i] = b;
                }
            }
            agree(&body, sig, *big, n_fds);
        }
    }
}
