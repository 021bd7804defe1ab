//! A small ONNX writer: enough of the ONNX protobuf schema to emit the
//! inference graphs our importers build (nodes, attributes, float
//! initialisers, typed inputs and outputs). Both engines read its output.
//!
//! Field numbers follow `onnx/onnx.proto`; the protobuf wire format is
//! written by hand (varints and length-delimited fields) so no code generator
//! is needed.

/// An attribute value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Floats(Vec<f32>),
    Str(String),
}

/// A constant tensor stored in the graph.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

#[derive(Debug, Clone)]
struct Node {
    op: String,
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attrs: Vec<(String, Attr)>,
}

#[derive(Debug, Clone)]
struct Initializer {
    name: String,
    dims: Vec<i64>,
    data: TensorData,
}

/// A graph input or output: a float tensor whose dimensions are sizes or names (dynamic).
#[derive(Debug, Clone)]
pub struct ValueInfo {
    pub name: String,
    pub dims: Vec<DimSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DimSpec {
    Size(i64),
    Named(String),
}

/// An ONNX graph under construction. Names of node outputs are generated.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    name: String,
    nodes: Vec<Node>,
    initializers: Vec<Initializer>,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    counter: usize,
}

impl Graph {
    pub fn new(name: &str) -> Self {
        Graph { name: name.into(), ..Default::default() }
    }

    pub fn input(&mut self, name: &str, dims: Vec<DimSpec>) -> String {
        self.inputs.push(ValueInfo { name: name.into(), dims });
        name.into()
    }

    /// Marks `value` as a graph output under `name` (an Identity node renames it).
    pub fn output(&mut self, value: &str, name: &str, dims: Vec<DimSpec>) {
        self.node_named("Identity", &[value], vec![], name);
        self.outputs.push(ValueInfo { name: name.into(), dims });
    }

    /// Adds a float constant; returns its name.
    pub fn constant(&mut self, hint: &str, dims: &[usize], data: Vec<f32>) -> String {
        self.constant_data(hint, dims, TensorData::F32(data))
    }

    /// Adds an int64 constant (shapes, axes); returns its name.
    pub fn constant_i64(&mut self, hint: &str, data: Vec<i64>) -> String {
        let dims = [data.len()];
        self.constant_data(hint, &dims, TensorData::I64(data))
    }

    fn constant_data(&mut self, hint: &str, dims: &[usize], data: TensorData) -> String {
        let name = self.fresh(hint);
        self.initializers.push(Initializer { name: name.clone(), dims: dims.iter().map(|&d| d as i64).collect(), data });
        name
    }

    /// Adds a node with one output; returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(op);
        self.node_named(op, inputs, attrs, &out);
        out
    }

    fn node_named(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, output: &str) {
        let name = self.fresh(&format!("{op}_node"));
        self.nodes.push(Node {
            op: op.into(),
            name,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.to_string()],
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        });
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Serialises a complete ModelProto (IR version 8) with the given opset.
    pub fn to_model_bytes(&self, producer: &str, opset: i64, doc: &str) -> Vec<u8> {
        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 8); // ir_version
        put_bytes_field(&mut model, 2, producer.as_bytes());
        put_bytes_field(&mut model, 3, env!("CARGO_PKG_VERSION").as_bytes());
        put_bytes_field(&mut model, 6, doc.as_bytes());
        put_bytes_field(&mut model, 7, &self.encode_graph());
        let mut opset_id = Vec::new();
        put_bytes_field(&mut opset_id, 1, b"");
        put_varint_field(&mut opset_id, 2, opset as u64);
        put_bytes_field(&mut model, 8, &opset_id);
        model
    }

    fn encode_graph(&self) -> Vec<u8> {
        let mut g = Vec::new();
        for n in &self.nodes {
            put_bytes_field(&mut g, 1, &encode_node(n));
        }
        put_bytes_field(&mut g, 2, self.name.as_bytes());
        for t in &self.initializers {
            put_bytes_field(&mut g, 5, &encode_tensor(t));
        }
        for v in &self.inputs {
            put_bytes_field(&mut g, 11, &encode_value_info(v));
        }
        for v in &self.outputs {
            put_bytes_field(&mut g, 12, &encode_value_info(v));
        }
        g
    }
}

fn encode_node(n: &Node) -> Vec<u8> {
    let mut b = Vec::new();
    for i in &n.inputs {
        put_bytes_field(&mut b, 1, i.as_bytes());
    }
    for o in &n.outputs {
        put_bytes_field(&mut b, 2, o.as_bytes());
    }
    put_bytes_field(&mut b, 3, n.name.as_bytes());
    put_bytes_field(&mut b, 4, n.op.as_bytes());
    for (name, value) in &n.attrs {
        put_bytes_field(&mut b, 5, &encode_attr(name, value));
    }
    b
}

/// AttributeProto.AttributeType values.
const ATTR_FLOAT: u64 = 1;
const ATTR_INT: u64 = 2;
const ATTR_STRING: u64 = 3;
const ATTR_FLOATS: u64 = 6;
const ATTR_INTS: u64 = 7;

fn encode_attr(name: &str, value: &Attr) -> Vec<u8> {
    let mut b = Vec::new();
    put_bytes_field(&mut b, 1, name.as_bytes());
    let kind = match value {
        Attr::Float(f) => {
            put_tag(&mut b, 2, 5);
            b.extend_from_slice(&f.to_le_bytes());
            ATTR_FLOAT
        }
        Attr::Int(i) => {
            put_varint_field(&mut b, 3, *i as u64);
            ATTR_INT
        }
        Attr::Str(s) => {
            put_bytes_field(&mut b, 4, s.as_bytes());
            ATTR_STRING
        }
        Attr::Floats(fs) => {
            let packed: Vec<u8> = fs.iter().flat_map(|f| f.to_le_bytes()).collect();
            put_bytes_field(&mut b, 7, &packed);
            ATTR_FLOATS
        }
        Attr::Ints(is) => {
            let mut packed = Vec::new();
            for &i in is {
                put_varint(&mut packed, i as u64);
            }
            put_bytes_field(&mut b, 8, &packed);
            ATTR_INTS
        }
    };
    put_varint_field(&mut b, 20, kind);
    b
}

/// TensorProto.DataType values.
const FLOAT: u64 = 1;
const INT64: u64 = 7;

fn encode_tensor(t: &Initializer) -> Vec<u8> {
    let mut b = Vec::new();
    let mut dims = Vec::new();
    for &d in &t.dims {
        put_varint(&mut dims, d as u64);
    }
    put_bytes_field(&mut b, 1, &dims);
    let (kind, raw): (u64, Vec<u8>) = match &t.data {
        TensorData::F32(v) => (FLOAT, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::I64(v) => (INT64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    put_varint_field(&mut b, 2, kind);
    put_bytes_field(&mut b, 8, t.name.as_bytes());
    put_bytes_field(&mut b, 9, &raw);
    b
}

fn encode_value_info(v: &ValueInfo) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in &v.dims {
        let mut dim = Vec::new();
        match d {
            DimSpec::Size(n) => put_varint_field(&mut dim, 1, *n as u64),
            DimSpec::Named(s) => put_bytes_field(&mut dim, 2, s.as_bytes()),
        }
        put_bytes_field(&mut shape, 1, &dim);
    }
    let mut tensor_type = Vec::new();
    put_varint_field(&mut tensor_type, 1, FLOAT);
    put_bytes_field(&mut tensor_type, 2, &shape);
    let mut type_proto = Vec::new();
    put_bytes_field(&mut type_proto, 1, &tensor_type);
    let mut b = Vec::new();
    put_bytes_field(&mut b, 1, v.name.as_bytes());
    put_bytes_field(&mut b, 2, &type_proto);
    b
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn put_tag(buf: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(buf, (field << 3) | wire);
}

pub(crate) fn put_varint_field(buf: &mut Vec<u8>, field: u64, v: u64) {
    put_tag(buf, field, 0);
    put_varint(buf, v);
}

pub(crate) fn put_bytes_field(buf: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_tag(buf, field, 2);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_encoding() {
        let mut b = Vec::new();
        put_varint(&mut b, 300);
        assert_eq!(b, [0xAC, 0x02]);
        let mut b = Vec::new();
        put_varint(&mut b, (-1i64) as u64);
        assert_eq!(b.len(), 10, "negative int64 takes ten bytes");
    }
}
