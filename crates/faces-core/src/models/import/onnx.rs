//! ONNX -> ONNX that both engines run. Weight-only quantisation is folded
//! away: every `DequantizeLinear` whose inputs are all initialisers (int8,
//! uint8 or int32 weights; per-tensor, per-axis or blocked scales and zero
//! points) becomes the float initialiser it computes, since tract has no
//! blocked `DequantizeLinear`. Graph inputs that are really weights (old IR
//! versions list them) are dropped, a batch of 1 in the inputs and outputs
//! becomes the dynamic `N`, and `value_info` shape hints, which may pin the
//! batch, are dropped. Everything else is copied byte for byte from the
//! protobuf wire format (field numbers from `onnx/onnx.proto`).

use std::collections::{HashMap, HashSet};

use crate::models::onnx::{put_bytes_field, put_varint, put_varint_field};

type R<T> = Result<T, String>;

// TensorProto.DataType values.
const FLOAT: u64 = 1;
const UINT8: u64 = 2;
const INT8: u64 = 3;
const INT32: u64 = 6;

/// One field of a protobuf message: its number, its payload and its bytes as written.
struct Field<'a> {
    number: u64,
    value: Value<'a>,
    raw: &'a [u8],
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> R<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or("truncated varint (file cut short?)")?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes: not an ONNX file".into())
}

/// The fields of one message, in order.
fn fields(buf: &[u8]) -> R<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let tag = varint(buf, &mut pos)?;
        let value = match tag & 7 {
            0 => Value::Varint(varint(buf, &mut pos)?),
            1 | 5 => {
                pos += if tag & 7 == 1 { 8 } else { 4 };
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| "field length overflows")?;
                let end = pos.checked_add(len).filter(|&e| e <= buf.len()).ok_or("field runs past the end (file cut short?)")?;
                let bytes = &buf[pos..end];
                pos = end;
                Value::Bytes(bytes)
            }
            w => return Err(format!("unsupported protobuf wire type {w}: not an ONNX file")),
        };
        if pos > buf.len() {
            return Err("field runs past the end (file cut short?)".into());
        }
        out.push(Field { number: tag >> 3, value, raw: &buf[start..pos] });
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> R<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
}

/// Repeated int64 fields may be packed (one length-delimited run) or not.
fn ints(value: &Value<'_>, out: &mut Vec<i64>) -> R<()> {
    match value {
        Value::Varint(v) => out.push(*v as i64),
        Value::Bytes(b) => {
            let mut pos = 0;
            while pos < b.len() {
                out.push(varint(b, &mut pos)? as i64);
            }
        }
        Value::Fixed => return Err("unexpected fixed-width integer".into()),
    }
    Ok(())
}

/// Rewrites an ONNX ModelProto; see the module documentation.
pub fn to_onnx(bytes: &[u8]) -> R<Vec<u8>> {
    let model = fields(bytes)?;
    let graph = model.iter().find(|f| f.number == 7).ok_or("no graph: not an ONNX model")?;
    let Value::Bytes(graph_bytes) = graph.value else { return Err("malformed graph field".into()) };
    let mut out = Vec::with_capacity(bytes.len() * 4);
    for f in &model {
        if f.number == 7 {
            put_bytes_field(&mut out, 7, &rewrite_graph(graph_bytes)?);
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    Ok(out)
}

struct Node<'a> {
    raw: &'a [u8],
    op: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    ints: HashMap<String, i64>,
}

fn parse_node(raw: &[u8]) -> R<Node<'_>> {
    let mut node = Node { raw, op: String::new(), inputs: Vec::new(), outputs: Vec::new(), ints: HashMap::new() };
    let mut domain = String::new();
    for f in fields(raw)? {
        match (f.number, &f.value) {
            (1, Value::Bytes(b)) => node.inputs.push(text(b)?),
            (2, Value::Bytes(b)) => node.outputs.push(text(b)?),
            (4, Value::Bytes(b)) => node.op = text(b)?,
            (7, Value::Bytes(b)) => domain = text(b)?,
            (5, Value::Bytes(b)) => {
                let mut name = String::new();
                let mut int = None;
                for a in fields(b)? {
                    match (a.number, a.value) {
                        (1, Value::Bytes(n)) => name = text(n)?,
                        (3, Value::Varint(v)) => int = Some(v as i64),
                        _ => {}
                    }
                }
                if let Some(v) = int {
                    node.ints.insert(name, v);
                }
            }
            _ => {}
        }
    }
    if !domain.is_empty() && domain != "ai.onnx" {
        node.op = format!("{domain}.{}", node.op);
    }
    Ok(node)
}

/// An initialiser decoded far enough to dequantise it.
struct Tensor {
    dims: Vec<i64>,
    kind: u64,
    values: Vec<f64>,
}

fn parse_tensor(raw: &[u8]) -> R<(String, Tensor)> {
    let mut name = String::new();
    let mut t = Tensor { dims: Vec::new(), kind: 0, values: Vec::new() };
    let mut raw_data: Option<&[u8]> = None;
    let mut typed = Vec::new();
    let mut floats = Vec::new();
    for f in fields(raw)? {
        match (f.number, &f.value) {
            (1, v) => ints(v, &mut t.dims)?,
            (2, Value::Varint(k)) => t.kind = *k,
            (4, Value::Bytes(b)) => floats.extend(b.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))),
            (5, v) => ints(v, &mut typed)?,
            (8, Value::Bytes(b)) => name = text(b)?,
            (9, Value::Bytes(b)) => raw_data = Some(b),
            (13, _) | (14, Value::Varint(1)) => return Err(format!("initialiser {name:?} keeps its data in an external file; give the model with its data inside")),
            _ => {}
        }
    }
    t.values = match (t.kind, raw_data) {
        (FLOAT, Some(b)) => b.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        (FLOAT, None) => floats,
        (INT8, Some(b)) => b.iter().map(|&v| f64::from(v as i8)).collect(),
        (UINT8, Some(b)) => b.iter().map(|&v| f64::from(v)).collect(),
        (INT32, Some(b)) => b.chunks_exact(4).map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        (INT8, None) => typed.iter().map(|&v| f64::from(v as i32 as i8)).collect(),
        (UINT8 | INT32, None) => typed.iter().map(|&v| v as i32 as f64).collect(),
        _ => Vec::new(),
    };
    Ok((name, t))
}

fn numel(dims: &[i64]) -> usize {
    dims.iter().map(|&d| d.max(0) as usize).product()
}

/// What `DequantizeLinear(q, scale, zero_point)` computes, as f32.
fn dequantise(q: &Tensor, scale: &Tensor, zero: Option<&Tensor>, axis: i64, block: i64) -> R<Vec<f32>> {
    if !matches!(q.kind, INT8 | UINT8 | INT32) || scale.kind != FLOAT {
        return Err(format!("DequantizeLinear of element type {} with scales of type {}: only int8, uint8 and int32 with float scales are supported", q.kind, scale.kind));
    }
    let n = numel(&q.dims);
    if q.values.len() != n || scale.values.len() != numel(&scale.dims) {
        return Err("a quantised initialiser holds fewer values than its shape".into());
    }
    if let Some(z) = zero {
        if z.values.len() != scale.values.len() {
            return Err("zero points and scales differ in number".into());
        }
    }
    let rank = q.dims.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    let per_tensor = scale.values.len() == 1;
    if !per_tensor && !(0..rank).contains(&axis) {
        return Err(format!("axis {axis} outside a tensor of rank {rank}"));
    }
    let ax = axis.clamp(0, (rank - 1).max(0)) as usize;
    let len = q.dims.get(ax).map_or(1, |&d| d.max(1) as usize);
    let inner = numel(&q.dims[(ax + 1).min(q.dims.len())..]);
    let blocks = if block > 0 { len.div_ceil(block as usize) } else { len };
    let expected = if per_tensor { 1 } else if block > 0 { n / len * blocks } else { len };
    if scale.values.len() != expected {
        return Err(format!("{} scales for a weight of shape {:?} (axis {axis}, block size {block}): expected {expected}", scale.values.len(), q.dims));
    }
    let at = |i: usize| -> usize {
        if per_tensor {
            return 0;
        }
        let (outer, rest) = (i / (len * inner), i % (len * inner));
        let a = rest / inner;
        if block > 0 {
            (outer * blocks + a / block as usize) * inner + rest % inner
        } else {
            a
        }
    };
    Ok((0..n)
        .map(|i| {
            let k = at(i);
            let z = zero.map_or(0.0, |z| z.values[k]);
            ((q.values[i] - z) * scale.values[k]) as f32
        })
        .collect())
}

fn float_initialiser(name: &str, dims: &[i64], data: &[f32]) -> Vec<u8> {
    let mut b = Vec::new();
    let mut packed = Vec::new();
    for &d in dims {
        put_varint(&mut packed, d as u64);
    }
    put_bytes_field(&mut b, 1, &packed);
    put_varint_field(&mut b, 2, FLOAT);
    put_bytes_field(&mut b, 8, name.as_bytes());
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    put_bytes_field(&mut b, 9, &raw);
    b
}

/// The graph once its constant `DequantizeLinear` nodes are computed.
struct Folded<'a> {
    /// The nodes left, in their order.
    kept: Vec<Node<'a>>,
    /// The float initialisers the folded nodes became, encoded.
    tensors: Vec<Vec<u8>>,
    /// Their names (the folded nodes' outputs).
    names: HashSet<String>,
    /// The initialisers the folded nodes read.
    read: HashSet<String>,
}

fn fold<'a>(nodes: Vec<Node<'a>>, inits: &HashMap<String, &[u8]>) -> R<Folded<'a>> {
    let mut folded = Folded { kept: Vec::new(), tensors: Vec::new(), names: HashSet::new(), read: HashSet::new() };
    for node in nodes {
        let constant = node.inputs.iter().filter(|i| !i.is_empty()).all(|i| inits.contains_key(i));
        if node.op != "DequantizeLinear" || !constant || node.outputs.len() != 1 {
            folded.kept.push(node);
            continue;
        }
        let name = &node.outputs[0];
        let mut get = |k: usize| -> R<Option<Tensor>> {
            let Some(input) = node.inputs.get(k).filter(|s| !s.is_empty()) else { return Ok(None) };
            folded.read.insert(input.clone());
            inits.get(input).map(|b| parse_tensor(b).map(|(_, t)| t)).transpose()
        };
        let q = get(0)?.ok_or_else(|| format!("{name}: DequantizeLinear without input"))?;
        let scale = get(1)?.ok_or_else(|| format!("{name}: DequantizeLinear without scale"))?;
        let zero = get(2)?;
        let axis = node.ints.get("axis").copied().unwrap_or(1);
        let block = node.ints.get("block_size").copied().unwrap_or(0);
        let data = dequantise(&q, &scale, zero.as_ref(), axis, block).map_err(|e| format!("{name}: {e}"))?;
        folded.tensors.push(float_initialiser(name, &q.dims, &data));
        folded.names.insert(name.clone());
    }
    Ok(folded)
}

fn rewrite_graph(graph: &[u8]) -> R<Vec<u8>> {
    let all = fields(graph)?;
    let mut nodes = Vec::new();
    // Initialisers by name, as payloads: only the ones a fold reads are decoded.
    let mut inits: HashMap<String, &[u8]> = HashMap::new();
    for f in &all {
        match (f.number, &f.value) {
            (1, Value::Bytes(b)) => nodes.push(parse_node(b)?),
            (5, Value::Bytes(b)) => {
                inits.insert(initialiser_name(b)?, b);
            }
            _ => {}
        }
    }
    let folded = fold(nodes, &inits)?;
    let used: HashSet<&str> = folded.kept.iter().flat_map(|n| n.inputs.iter().map(String::as_str)).collect();
    let mut out = Vec::new();
    let mut wrote_nodes = false;
    for f in &all {
        match (f.number, &f.value) {
            // Nodes keep their order (ONNX wants them sorted), where the first one was.
            (1, _) if !wrote_nodes => {
                for n in &folded.kept {
                    put_bytes_field(&mut out, 1, n.raw);
                }
                wrote_nodes = true;
            }
            // The quantised weights, scales and zero points go once nothing else reads them.
            (5, Value::Bytes(b)) => {
                let name = initialiser_name(b)?;
                if !folded.read.contains(&name) || used.contains(name.as_str()) {
                    out.extend_from_slice(f.raw);
                }
            }
            (1 | 13, _) => {}
            // Inputs that are really weights go; the others get a free batch.
            (11, Value::Bytes(b)) => {
                let name = value_name(b)?;
                let weight = inits.contains_key(&name) || folded.names.contains(&name);
                if !weight && used.contains(name.as_str()) {
                    put_bytes_field(&mut out, 11, &free_batch(b)?);
                }
            }
            (12, Value::Bytes(b)) => put_bytes_field(&mut out, 12, &free_batch(b)?),
            _ => out.extend_from_slice(f.raw),
        }
    }
    for t in &folded.tensors {
        put_bytes_field(&mut out, 5, t);
    }
    Ok(out)
}

fn initialiser_name(tensor: &[u8]) -> R<String> {
    for f in fields(tensor)? {
        if let (8, Value::Bytes(b)) = (f.number, f.value) {
            return text(b);
        }
    }
    Ok(String::new())
}

fn value_name(info: &[u8]) -> R<String> {
    for f in fields(info)? {
        if let (1, Value::Bytes(b)) = (f.number, f.value) {
            return text(b);
        }
    }
    Ok(String::new())
}

/// A ValueInfoProto whose first dimension, when it is a fixed 1, becomes `N`.
fn free_batch(info: &[u8]) -> R<Vec<u8>> {
    // ValueInfoProto.type (2) -> TypeProto.tensor_type (1) -> shape (2) -> first dim (1).
    rewrite_path(info, &[2, 1, 2], &|shape| {
        let dims = fields(shape)?;
        let mut out = Vec::new();
        for (i, d) in dims.iter().enumerate() {
            let fixed_one = i == 0 && d.number == 1 && matches!(&d.value, Value::Bytes(b) if is_dim_one(b));
            if fixed_one {
                let mut dim = Vec::new();
                put_bytes_field(&mut dim, 2, b"N");
                put_bytes_field(&mut out, 1, &dim);
            } else {
                out.extend_from_slice(d.raw);
            }
        }
        Ok(out)
    })
}

fn is_dim_one(dim: &[u8]) -> bool {
    fields(dim).is_ok_and(|fs| fs.iter().any(|f| f.number == 1 && matches!(f.value, Value::Varint(1))))
}

/// Applies `edit` to the message reached by following field numbers `path`.
fn rewrite_path(msg: &[u8], path: &[u64], edit: &dyn Fn(&[u8]) -> R<Vec<u8>>) -> R<Vec<u8>> {
    let Some((&first, rest)) = path.split_first() else { return edit(msg) };
    let mut out = Vec::new();
    for f in fields(msg)? {
        match (f.number == first, f.value) {
            (true, Value::Bytes(b)) => put_bytes_field(&mut out, first, &rewrite_path(b, rest, edit)?),
            _ => out.extend_from_slice(f.raw),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dims: &[i64], kind: u64, values: &[f64]) -> Tensor {
        Tensor { dims: dims.to_vec(), kind, values: values.to_vec() }
    }

    #[test]
    fn blocked_scales_cover_runs_along_the_axis() {
        // A 2x5 int8 weight, blocks of 2 along axis 1: 3 blocks per row, the last one short.
        let q = tensor(&[2, 5], INT8, &[1., 2., 3., 4., 5., -1., -2., -3., -4., -5.]);
        let s = tensor(&[2, 3], FLOAT, &[1., 10., 100., 0.5, 0.25, 2.]);
        let z = tensor(&[2, 3], INT8, &[0., 1., 0., 0., 0., 1.]);
        let w = dequantise(&q, &s, Some(&z), 1, 2).unwrap();
        assert_eq!(w, [1., 2., 20., 30., 500., -0.5, -1., -0.75, -1., -12.]);
    }

    #[test]
    fn per_axis_and_per_tensor_scales() {
        let q = tensor(&[2, 2], UINT8, &[10., 20., 30., 40.]);
        let per_row = dequantise(&q, &tensor(&[2], FLOAT, &[0.1, 1.0]), None, 0, 0).unwrap();
        assert_eq!(per_row, [1.0, 2.0, 30.0, 40.0]);
        let one = dequantise(&q, &tensor(&[], FLOAT, &[2.0]), Some(&tensor(&[], UINT8, &[10.])), 1, 0).unwrap();
        assert_eq!(one, [0.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn wrong_scale_counts_and_truncated_files_are_refused() {
        let q = tensor(&[2, 4], INT8, &[0.; 8]);
        assert!(dequantise(&q, &tensor(&[2, 3], FLOAT, &[1.; 6]), None, 1, 2).is_err());
        assert!(to_onnx(&[0x3a, 0x10, 0x01]).is_err(), "graph field longer than the file");
        assert!(to_onnx(b"not a model at all").is_err());
    }
}
