//! The Thrift compact protocol, as much of it as Parquet's footer and page
//! headers use: a writer for the structs we emit, and a reader that turns any
//! compact-encoded struct into a small tree (unknown fields are kept, so a
//! reader built on it ignores what it does not need).
//!
//! Encoding (Apache Thrift, `doc/specs/thrift-compact-protocol.md`): integers
//! are zigzag varints; a field header is one byte `delta << 4 | type` when
//! the id grows by 1..=15 over the previous field of the same struct, else the
//! type byte and the id as a zigzag varint; booleans live in the field
//! header's type; a struct ends with a `0` byte; a list header is
//! `size << 4 | element type` below 15 elements, else `0xF0 | type` and a
//! varint size.

use super::LakeError;

/// Compact protocol type codes.
pub const BOOL_TRUE: u8 = 1;
pub const BOOL_FALSE: u8 = 2;
pub const BYTE: u8 = 3;
pub const I16: u8 = 4;
pub const I32: u8 = 5;
pub const I64: u8 = 6;
pub const DOUBLE: u8 = 7;
pub const BINARY: u8 = 8;
pub const LIST: u8 = 9;
pub const SET: u8 = 10;
pub const MAP: u8 = 11;
pub const STRUCT: u8 = 12;

/// Deepest nesting the reader follows (Parquet's own structs nest 5 deep).
const MAX_DEPTH: usize = 32;

/// A compact-protocol writer. Structs are opened with [`Writer::begin`] (a
/// field) or [`Writer::begin_element`] (a list element) and closed with
/// [`Writer::end`].
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
    last: Vec<i16>,
    current: i16,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn header(&mut self, id: i16, ty: u8) {
        let delta = i32::from(id) - i32::from(self.current);
        if (1..=15).contains(&delta) {
            self.buf.push(((delta as u8) << 4) | ty);
        } else {
            self.buf.push(ty);
            self.zigzag(i64::from(id));
        }
        self.current = id;
    }

    pub fn i32(&mut self, id: i16, v: i32) {
        self.header(id, I32);
        self.zigzag(i64::from(v));
    }

    pub fn i64(&mut self, id: i16, v: i64) {
        self.header(id, I64);
        self.zigzag(v);
    }

    pub fn bool(&mut self, id: i16, v: bool) {
        self.header(id, if v { BOOL_TRUE } else { BOOL_FALSE });
    }

    pub fn binary(&mut self, id: i16, v: &[u8]) {
        self.header(id, BINARY);
        self.element_binary(v);
    }

    /// A list field of `len` elements of type `ty`; write the elements next.
    pub fn list(&mut self, id: i16, ty: u8, len: usize) {
        self.header(id, LIST);
        if len < 15 {
            self.buf.push(((len as u8) << 4) | ty);
        } else {
            self.buf.push(0xF0 | ty);
            self.varint(len as u64);
        }
    }

    pub fn element_i32(&mut self, v: i32) {
        self.zigzag(i64::from(v));
    }

    pub fn element_binary(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// Open a struct-valued field.
    pub fn begin(&mut self, id: i16) {
        self.header(id, STRUCT);
        self.begin_element();
    }

    /// Open a struct that is a list element.
    pub fn begin_element(&mut self) {
        self.last.push(self.current);
        self.current = 0;
    }

    /// An empty struct-valued field (`StringType {}`, `TypeDefinedOrder {}`…).
    pub fn empty(&mut self, id: i16) {
        self.begin(id);
        self.end();
    }

    /// Close the innermost struct (or the outermost message).
    pub fn end(&mut self) {
        self.buf.push(0);
        self.current = self.last.pop().unwrap_or(0);
    }
}

/// A decoded compact-protocol value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    /// Every integer width (byte, i16, i32, i64).
    Int(i64),
    Double(f64),
    Binary(Vec<u8>),
    List(Vec<Value>),
    /// Map entries, flattened to key, value, key, value…
    Map(Vec<Value>),
    Struct(Struct),
}

/// A decoded struct: its fields by id, in wire order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct(pub Vec<(i16, Value)>);

impl Struct {
    pub fn get(&self, id: i16) -> Option<&Value> {
        self.0.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
    }

    pub fn int(&self, id: i16) -> Option<i64> {
        match self.get(id) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// A required integer field, or a `Corrupt` error naming `what`.
    pub fn need_int(&self, id: i16, what: &'static str) -> Result<i64, LakeError> {
        self.int(id).ok_or(LakeError::Corrupt(what))
    }

    pub fn binary(&self, id: i16) -> Option<&[u8]> {
        match self.get(id) {
            Some(Value::Binary(v)) => Some(v),
            _ => None,
        }
    }

    pub fn strukt(&self, id: i16) -> Option<&Struct> {
        match self.get(id) {
            Some(Value::Struct(s)) => Some(s),
            _ => None,
        }
    }

    pub fn list(&self, id: i16) -> Option<&[Value]> {
        match self.get(id) {
            Some(Value::List(v)) => Some(v),
            _ => None,
        }
    }
}

/// Reads one struct from the start of `bytes`; returns it and how many bytes it took.
pub fn read_struct(bytes: &[u8]) -> Result<(Struct, usize), LakeError> {
    let mut r = Reader { bytes, pos: 0 };
    let s = r.strukt(0)?;
    Ok((s, r.pos))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const TRUNCATED: LakeError = LakeError::Corrupt("thrift: truncated");

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, LakeError> {
        let b = *self.bytes.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, LakeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(LakeError::Corrupt("thrift: varint too long"))
    }

    fn zigzag(&mut self) -> Result<i64, LakeError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count that cannot exceed the bytes left (every element takes ≥ 1 byte).
    fn count(&mut self, n: u64) -> Result<usize, LakeError> {
        let left = self.bytes.len() - self.pos;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= left)
            .ok_or(LakeError::Corrupt("thrift: a length runs past the end"))
    }

    fn value(&mut self, ty: u8, depth: usize) -> Result<Value, LakeError> {
        if depth > MAX_DEPTH {
            return Err(LakeError::Corrupt("thrift: nested too deep"));
        }
        Ok(match ty {
            BOOL_TRUE => Value::Bool(true),
            BOOL_FALSE => Value::Bool(false),
            BYTE => Value::Int(i64::from(self.byte()? as i8)),
            I16 | I32 | I64 => Value::Int(self.zigzag()?),
            DOUBLE => {
                let end = self.pos.checked_add(8).ok_or(TRUNCATED)?;
                let raw = self.bytes.get(self.pos..end).ok_or(TRUNCATED)?;
                self.pos = end;
                let mut le = [0u8; 8];
                le.copy_from_slice(raw);
                Value::Double(f64::from_le_bytes(le))
            }
            BINARY => {
                let n = self.varint()?;
                let n = self.count(n)?;
                let v = self.bytes[self.pos..self.pos + n].to_vec();
                self.pos += n;
                Value::Binary(v)
            }
            LIST | SET => {
                let head = self.byte()?;
                let n = match head >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                let n = self.count(n)?;
                let elem = head & 0x0F;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.element(elem, depth + 1)?);
                }
                Value::List(items)
            }
            MAP => {
                let n = self.varint()?;
                let n = self.count(n)?;
                let mut items = Vec::with_capacity(n * 2);
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        items.push(self.element(kv >> 4, depth + 1)?);
                        items.push(self.element(kv & 0x0F, depth + 1)?);
                    }
                }
                Value::Map(items)
            }
            STRUCT => Value::Struct(self.strukt(depth + 1)?),
            _ => return Err(LakeError::Corrupt("thrift: unknown type")),
        })
    }

    /// A container element: booleans are a whole byte there (1 is true).
    fn element(&mut self, ty: u8, depth: usize) -> Result<Value, LakeError> {
        if ty == BOOL_TRUE || ty == BOOL_FALSE {
            return Ok(Value::Bool(self.byte()? == BOOL_TRUE));
        }
        self.value(ty, depth)
    }

    fn strukt(&mut self, depth: usize) -> Result<Struct, LakeError> {
        let mut fields = Vec::new();
        let mut last: i16 = 0;
        loop {
            let head = self.byte()?;
            if head == 0 {
                return Ok(Struct(fields));
            }
            let ty = head & 0x0F;
            let id = match head >> 4 {
                0 => i16::try_from(self.zigzag()?)
                    .map_err(|_| LakeError::Corrupt("thrift: field id out of range"))?,
                delta => last.wrapping_add(i16::from(delta)),
            };
            last = id;
            fields.push((id, self.value(ty, depth)?));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_structs_read_back_with_long_field_deltas_and_lists() {
        let mut w = Writer::new();
        w.i32(1, -3);
        w.i64(20, 1 << 40);
        w.bool(21, true);
        w.list(22, BINARY, 16);
        for i in 0..16u8 {
            w.element_binary(&[i]);
        }
        w.begin(23);
        w.binary(4, b"name");
        w.end();
        w.i32(24, 7);
        w.end();
        let (s, used) = read_struct(&w.buf).unwrap();
        assert_eq!(used, w.buf.len());
        assert_eq!(s.int(1), Some(-3));
        assert_eq!(s.int(20), Some(1 << 40));
        assert_eq!(s.get(21), Some(&Value::Bool(true)));
        assert_eq!(s.list(22).map(<[Value]>::len), Some(16));
        assert_eq!(s.strukt(23).and_then(|n| n.binary(4)), Some(&b"name"[..]));
        assert_eq!(
            s.int(24),
            Some(7),
            "the id after a nested struct is relative to the outer one"
        );
    }

    #[test]
    fn truncated_or_hostile_input_is_an_error_not_a_panic() {
        let mut w = Writer::new();
        w.binary(1, &[7; 40]);
        w.end();
        for cut in 0..w.buf.len() {
            assert!(read_struct(&w.buf[..cut]).is_err(), "cut at {cut}");
        }
        // A list claiming 2^40 elements in a few bytes.
        assert!(read_struct(&[0x19, 0xF8, 0x80, 0x80, 0x80, 0x80, 0x40]).is_err());
        // Structs nested past the limit.
        let deep = vec![0x1C; 100];
        assert!(read_struct(&deep).is_err());
    }
}
