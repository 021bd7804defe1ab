//! dlib DNN (`dlib::serialize` of a `loss_metric` network) -> ONNX, for
//! `dlib_face_recognition_resnet_model_v1.dat` (dlib's ResNet face descriptor).
//!
//! This module owns three things:
//! * the primitive decoders of dlib's serialisation (variable-length ints,
//!   mantissa/exponent floats, strings, ASCII bools, tensors), all bounds-checked;
//! * the schema of that one network. The file stores no layer kinds for tag and
//!   skip wrappers and no tag ids, so the reader walks the known type chain
//!   (outermost first, as dlib writes the wrapper versions) and checks each
//!   layer's name and hyper-parameters against it;
//! * the ONNX graph: Conv with explicit pads, Mul+Add for dlib's affine
//!   (folded batch-norm) layers, Relu, MaxPool/AveragePool, dlib's
//!   zero-extending residual add (Pad both operands to the larger static shape,
//!   then Add), GlobalAveragePool, and the bias-free fc as Flatten+MatMul.
//!
//! The graph takes NCHW `[batch, 3, 150, 150]` already normalised as
//! `(pixel - avg) / 256` (the caller does that from the manifest spec) and
//! returns the raw 128-d descriptor, not L2-normalised, as dlib does.

use std::collections::HashMap;

use crate::models::onnx::{Attr, DimSpec, Graph};

type R<T> = Result<T, String>;

// ---------------------------------------------------------------------------
// Primitive decoders.

/// A cursor over the file; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> R<&'a [u8]> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(format!(
                "truncated file: {what} at byte {} needs {n} bytes but only {left} remain",
                self.pos
            ));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// dlib's integer: a control byte (bit 7 = negative, bits 0-3 = byte count
    /// 1..8, bits 4-6 zero) then the magnitude, little-endian.
    fn int(&mut self, what: &str) -> R<i64> {
        let at = self.pos;
        let ctrl = self.take(1, what)?[0];
        let n = usize::from(ctrl & 0x0F);
        if ctrl & 0x70 != 0 || n == 0 || n > 8 {
            return Err(format!("{what} at byte {at}: 0x{ctrl:02x} is not a dlib integer control byte"));
        }
        let magnitude = self.take(n, what)?.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let value = if ctrl & 0x80 != 0 { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() };
        value.ok_or_else(|| format!("{what} at byte {at}: integer out of range"))
    }

    /// A non-negative integer that fits in `usize` (sizes, counts, strides).
    fn size(&mut self, what: &str) -> R<usize> {
        let at = self.pos;
        let v = self.int(what)?;
        usize::try_from(v).map_err(|_| format!("{what} at byte {at}: expected a size, found {v}"))
    }

    /// dlib's float: int mantissa, then int exponent; value = mantissa * 2^exponent.
    fn float(&mut self, what: &str) -> R<f64> {
        let at = self.pos;
        if self.buf.get(at).is_some_and(|b| b & 0x70 != 0) {
            return Err(format!("{what} at byte {at}: legacy ASCII floats are not supported"));
        }
        let mantissa = self.int(what)?;
        match self.int(what)? {
            32000 => Ok(f64::INFINITY),
            32001 => Ok(f64::NEG_INFINITY),
            32002 => Ok(f64::NAN),
            e => {
                let e = i16::try_from(e).map_err(|_| format!("{what} at byte {at}: exponent {e} out of range"))?;
                Ok(ldexp(mantissa as f64, i32::from(e)))
            }
        }
    }

    /// One ASCII byte, `'1'` or `'0'`.
    fn bool(&mut self, what: &str) -> R<bool> {
        let at = self.pos;
        match self.take(1, what)?[0] {
            b'1' => Ok(true),
            b'0' => Ok(false),
            b => Err(format!("{what} at byte {at}: 0x{b:02x} is not a dlib bool ('0' or '1')")),
        }
    }

    /// A length-prefixed string.
    fn string(&mut self, what: &str) -> R<String> {
        let n = self.size(what)?;
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }

    /// A string that must be one of `allowed` (layer and format names).
    fn expect(&mut self, allowed: &[&str], what: &str) -> R<String> {
        let at = self.pos;
        let s = self.string(what)?;
        if allowed.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(format!("{what} at byte {at}: expected {allowed:?}, found {:?}", truncate(&s)))
        }
    }

    /// Four sizes after a version int (tensor and alias_tensor headers).
    fn dims(&mut self, version: i64, what: &str) -> R<[usize; 4]> {
        let at = self.pos;
        let v = self.int(what)?;
        if v != version {
            return Err(format!("{what} at byte {at}: version {v}, expected {version}"));
        }
        Ok([self.size(what)?, self.size(what)?, self.size(what)?, self.size(what)?])
    }

    /// A tensor: version 2, dims (n, k, nr, nc), then raw little-endian f32 values.
    fn tensor(&mut self, what: &str) -> R<Vec<f32>> {
        let dims = self.dims(2, what)?;
        let bytes = product(&dims).and_then(|c| c.checked_mul(4)).ok_or_else(|| format!("{what}: tensor dims {dims:?} overflow"))?;
        let raw = self.take(bytes, what)?;
        Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// An alias_tensor: version 1 and dims, no data.
    fn alias(&mut self, what: &str) -> R<[usize; 4]> {
        self.dims(1, what)
    }
}

/// `v * 2^e` without overflow in the intermediate power.
fn ldexp(mut v: f64, mut e: i32) -> f64 {
    while e != 0 {
        let step = e.clamp(-1000, 1000);
        v *= 2f64.powi(step);
        e -= step;
    }
    v
}

/// The product of sizes read from the file, `None` on overflow.
fn product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

// ---------------------------------------------------------------------------
// The network's schema: dlib's `anet_type` from dnn_face_recognition_ex.cpp.

/// One wrapper of the C++ type chain.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Con { filters: usize, kernel: usize, stride: usize },
    Affine,
    Relu,
    AddPrev(u8),
    MaxPool { size: usize, stride: usize },
    AvgPool { size: usize, stride: usize },
    /// avg_pool_everything: window 0x0 = the whole input.
    AvgPoolAll,
    FcNoBias(usize),
    Tag(u8),
    Skip(u8),
}

fn con(filters: usize, kernel: usize, stride: usize) -> Step {
    Step::Con { filters, kernel, stride }
}

/// affine∘con(N,3x3,1)∘relu∘affine∘con(N,3x3,stride), outermost first.
fn block(n: usize, stride: usize) -> Vec<Step> {
    vec![Step::Affine, con(n, 3, 1), Step::Relu, Step::Affine, con(n, 3, stride)]
}

/// relu(add_prev1(block(tag1(x)))).
fn ares(n: usize) -> Vec<Step> {
    [vec![Step::Relu, Step::AddPrev(1)], block(n, 1), vec![Step::Tag(1)]].concat()
}

/// relu(add_prev2(avg_pool2x2/2(skip1(tag2(block<N,2>(tag1(x))))))).
fn ares_down(n: usize) -> Vec<Step> {
    let head = vec![Step::Relu, Step::AddPrev(2), Step::AvgPool { size: 2, stride: 2 }, Step::Skip(1), Step::Tag(2)];
    [head, block(n, 2), vec![Step::Tag(1)]].concat()
}

/// The whole chain under the loss layer, outermost first; the last step sits on the input.
fn schema() -> Vec<Step> {
    let mut chain = vec![Step::FcNoBias(128), Step::AvgPoolAll];
    chain.extend(ares_down(256));
    for n in [256, 256] {
        chain.extend(ares(n));
    }
    chain.extend(ares_down(256));
    for n in [128, 128] {
        chain.extend(ares(n));
    }
    chain.extend(ares_down(128));
    for n in [64, 64, 64] {
        chain.extend(ares(n));
    }
    chain.extend(ares_down(64));
    for n in [32, 32, 32] {
        chain.extend(ares(n));
    }
    chain.extend([Step::MaxPool { size: 3, stride: 2 }, Step::Relu, Step::Affine, con(32, 7, 2)]);
    chain
}

// ---------------------------------------------------------------------------
// Layer records.

#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    size: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
}

#[derive(Debug, Clone)]
enum Layer {
    Con { weights: Vec<f32>, bias: Option<Vec<f32>>, shape: [usize; 4], window: Window, relu: bool },
    Affine { gamma: Vec<f32>, beta: Vec<f32> },
    Relu,
    Identity,
    AddPrev(u8),
    Pool { max: bool, window: Window },
    Fc { weights: Vec<f32>, bias: Option<Vec<f32>>, inputs: usize, outputs: usize },
    Tag(u8),
    Skip(u8),
}

/// The parsed network: the input normalisation and the layers in computation order.
struct Network {
    mean: [f64; 3],
    rows: usize,
    cols: usize,
    layers: Vec<Layer>,
}

fn window(r: &mut Reader, what: &str) -> R<Window> {
    let size = [r.size(what)?, r.size(what)?];
    let stride = [r.size(what)?, r.size(what)?];
    let pad = [r.size(what)?, r.size(what)?];
    if stride.contains(&0) {
        return Err(format!("{what}: zero stride"));
    }
    Ok(Window { size, stride, pad })
}

/// Splits a flat parameter tensor into weights and optional bias of the given sizes.
fn split(params: Vec<f32>, weights: usize, bias: Option<usize>, what: &str) -> R<(Vec<f32>, Option<Vec<f32>>)> {
    if weights.checked_add(bias.unwrap_or(0)) != Some(params.len()) {
        return Err(format!("{what}: {} parameters, expected {weights} weights and {bias:?} biases", params.len()));
    }
    let mut weights_part = params;
    let bias_part = bias.map(|_| weights_part.split_off(weights));
    Ok((weights_part, bias_part))
}

fn read_con(r: &mut Reader, what: &str) -> R<Layer> {
    let version = r.expect(&["con_4", "con_5", "con_6"], what)?;
    let params = r.tensor(what)?;
    let filters = r.size(what)?;
    let window = window(r, what)?;
    let shape = r.alias(what)?;
    let bias_alias = r.alias(what)?;
    for _ in 0..4 {
        r.float(what)?; // learning-rate and weight-decay multipliers
    }
    let use_bias = if version == "con_4" { true } else { r.bool(what)? };
    let relu = version == "con_6" && r.bool(what)?;
    if shape[0] != filters || shape[2..] != window.size || (use_bias && bias_alias != [1, filters, 1, 1]) {
        return Err(format!("{what}: filter shape {shape:?} and bias {bias_alias:?} disagree with {filters} filters of {:?}", window.size));
    }
    let count = product(&shape).ok_or_else(|| format!("{what}: filter shape {shape:?} overflows"))?;
    let (weights, bias) = split(params, count, use_bias.then_some(filters), what)?;
    Ok(Layer::Con { weights, bias, shape, window, relu })
}

fn read_affine(r: &mut Reader, what: &str) -> R<Layer> {
    let version = r.expect(&["affine_", "affine_2"], what)?;
    let params = r.tensor(what)?;
    let (gamma_dims, beta_dims) = (r.alias(what)?, r.alias(what)?);
    let mode = r.int(what)?;
    let disabled = version == "affine_2" && r.bool(what)?;
    if mode != 0 {
        return Err(format!("{what}: affine mode {mode} (only per-channel CONV_MODE = 0 is supported)"));
    }
    let k = gamma_dims[1];
    if gamma_dims != [1, k, 1, 1] || beta_dims != gamma_dims {
        return Err(format!("{what}: gamma {gamma_dims:?} / beta {beta_dims:?} are not per-channel"));
    }
    let (gamma, beta) = split(params, k, Some(k), what)?;
    match (disabled, beta) {
        (true, _) => Ok(Layer::Identity),
        (false, Some(beta)) => Ok(Layer::Affine { gamma, beta }),
        (false, None) => Err(format!("{what}: missing beta")),
    }
}

fn read_relu(r: &mut Reader, what: &str) -> R<Layer> {
    let version = r.expect(&["relu_", "relu_2"], what)?;
    let disabled = version == "relu_2" && r.bool(what)?;
    Ok(if disabled { Layer::Identity } else { Layer::Relu })
}

fn read_pool(r: &mut Reader, max: bool, what: &str) -> R<Layer> {
    r.expect(&[if max { "max_pool_2" } else { "avg_pool_2" }], what)?;
    Ok(Layer::Pool { max, window: window(r, what)? })
}

fn read_fc(r: &mut Reader, what: &str) -> R<Layer> {
    let version = r.expect(&["fc_2", "fc_3"], what)?;
    let (outputs, inputs) = (r.size(what)?, r.size(what)?);
    let params = r.tensor(what)?;
    let (weight_dims, _bias_dims) = (r.alias(what)?, r.alias(what)?);
    let bias_mode = r.int(what)?;
    for _ in 0..4 {
        r.float(what)?;
    }
    let use_bias = bias_mode == 0 && (version == "fc_2" || r.bool(what)?);
    if weight_dims != [inputs, outputs, 1, 1] {
        return Err(format!("{what}: weights {weight_dims:?}, expected [{inputs}, {outputs}, 1, 1]"));
    }
    let count = product(&[inputs, outputs]).ok_or_else(|| format!("{what}: {inputs}x{outputs} weights overflow"))?;
    let (weights, bias) = split(params, count, use_bias.then_some(outputs), what)?;
    Ok(Layer::Fc { weights, bias, inputs, outputs })
}

/// The fields every add_layer writes after its details; all ignored.
fn skip_trailer(r: &mut Reader, version: i64, on_input: bool, what: &str) -> R<()> {
    for _ in 0..3 {
        r.bool(what)?;
    }
    r.tensor(what)?; // x_grad
    r.tensor(what)?; // cached_output
    if on_input {
        r.tensor(what)?; // grad_final
        if version == 3 {
            r.int(what)?; // sample_expansion_factor
        }
    } else if version == 2 {
        r.tensor(what)?; // params_grad
    }
    Ok(())
}

/// Reads one layer record and checks it against the schema step.
fn read_layer(r: &mut Reader, step: Step, version: i64, on_input: bool, what: &str) -> R<Layer> {
    let layer = match step {
        Step::Tag(id) => return Ok(Layer::Tag(id)),
        Step::Skip(id) => return Ok(Layer::Skip(id)),
        Step::Con { .. } => read_con(r, what)?,
        Step::Affine => read_affine(r, what)?,
        Step::Relu => read_relu(r, what)?,
        Step::AddPrev(id) => {
            r.expect(&["add_prev_"], what)?;
            Layer::AddPrev(id)
        }
        Step::MaxPool { .. } => read_pool(r, true, what)?,
        Step::AvgPool { .. } | Step::AvgPoolAll => read_pool(r, false, what)?,
        Step::FcNoBias(_) => read_fc(r, what)?,
    };
    check_step(&layer, step, what)?;
    skip_trailer(r, version, on_input, what)?;
    Ok(layer)
}

/// Hyper-parameters must match the schema (the file is the network we think it is).
fn check_step(layer: &Layer, step: Step, what: &str) -> R<()> {
    let square = |size, stride, pad| Window { size: [size, size], stride: [stride, stride], pad: [pad, pad] };
    let ok = match (layer, step) {
        (Layer::Con { shape, window, .. }, Step::Con { filters, kernel, stride }) => {
            let pad = if stride == 1 { kernel / 2 } else { 0 };
            shape[0] == filters && *window == square(kernel, stride, pad)
        }
        (Layer::Pool { max: true, window }, Step::MaxPool { size, stride }) => *window == square(size, stride, 0),
        (Layer::Pool { max: false, window }, Step::AvgPool { size, stride }) => *window == square(size, stride, 0),
        (Layer::Pool { max: false, window }, Step::AvgPoolAll) => window.size == [0, 0] && window.pad == [0, 0],
        (Layer::Fc { outputs, bias, .. }, Step::FcNoBias(n)) => *outputs == n && bias.is_none(),
        (_, Step::Affine | Step::Relu | Step::AddPrev(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: does not match dlib_face_recognition_resnet_model_v1 (expected {step:?})"))
    }
}

/// The loss layer's header: its version and name (margin and threshold are read and dropped).
fn read_loss(r: &mut Reader) -> R<()> {
    let v = r.int("loss layer version")?;
    if v != 1 {
        return Err(format!("loss layer version {v}, expected 1: not a dlib metric network"));
    }
    if r.expect(&["loss_metric_2", "loss_metric_"], "loss layer")? == "loss_metric_2" {
        r.float("loss margin")?;
        r.float("loss distance threshold")?;
    }
    Ok(())
}

/// The wrapper versions, outermost first: 1 for tag/skip, 1-2 for layers, 2-3 on the input.
fn read_versions(r: &mut Reader, chain: &[Step]) -> R<Vec<i64>> {
    let last = chain.len() - 1;
    chain
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let v = r.int("layer wrapper version")?;
            let ok = match step {
                Step::Tag(_) | Step::Skip(_) => v == 1,
                _ if i == last => v == 2 || v == 3,
                _ => v == 1 || v == 2,
            };
            if ok {
                Ok(v)
            } else {
                Err(format!("wrapper {i} ({step:?}) has version {v}: the file is not this network"))
            }
        })
        .collect()
}

fn read_input(r: &mut Reader) -> R<([f64; 3], usize, usize)> {
    r.expect(&["input_rgb_image_sized"], "input layer")?;
    let mean = [r.float("avg_red")?, r.float("avg_green")?, r.float("avg_blue")?];
    Ok((mean, r.size("input rows")?, r.size("input columns")?))
}

fn parse(bytes: &[u8]) -> R<Network> {
    let mut r = Reader::new(bytes);
    let chain = schema();
    read_loss(&mut r)?;
    let versions = read_versions(&mut r, &chain)?;
    let (mean, rows, cols) = read_input(&mut r)?;
    let last = chain.len() - 1;
    let layers = (0..chain.len())
        .rev()
        .map(|i| {
            let what = format!("layer {} ({:?})", last - i, chain[i]);
            read_layer(&mut r, chain[i], versions[i], i == last, &what)
        })
        .collect::<R<Vec<_>>>()?;
    if r.pos != bytes.len() {
        return Err(format!("{} unexpected bytes after the last layer (at byte {})", bytes.len() - r.pos, r.pos));
    }
    Ok(Network { mean, rows, cols, layers })
}

// ---------------------------------------------------------------------------
// ONNX graph.

/// A value in the graph and its static per-sample shape (k, rows, cols).
#[derive(Debug, Clone)]
struct Value {
    name: String,
    shape: [usize; 3],
}

struct Builder {
    graph: Graph,
    x: Value,
    tags: HashMap<u8, Value>,
    /// Width of the flattened output once the fc layer has run.
    out: Option<usize>,
}

/// dlib's (and ONNX's floor-mode) output size: 1 + (n + 2p - k) / s.
fn out_size(n: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    (n + 2 * p).checked_sub(k).map(|d| 1 + d / s)
}

fn window_attrs(w: &Window) -> Vec<(&'static str, Attr)> {
    let ints = |v: [usize; 2]| Attr::Ints(v.iter().map(|&x| x as i64).collect());
    let [py, px] = w.pad.map(|p| p as i64);
    vec![("kernel_shape", ints(w.size)), ("strides", ints(w.stride)), ("pads", Attr::Ints(vec![py, px, py, px]))]
}

impl Builder {
    fn new(rows: usize, cols: usize) -> Self {
        let mut graph = Graph::new("dlib_resnet");
        let dims = vec![DimSpec::Named("batch".into()), DimSpec::Size(3), DimSpec::Size(rows as i64), DimSpec::Size(cols as i64)];
        let name = graph.input("input", dims);
        Builder { graph, x: Value { name, shape: [3, rows, cols] }, tags: HashMap::new(), out: None }
    }

    fn emit(&mut self, layer: &Layer, what: &str) -> R<()> {
        if self.out.is_some() {
            return Err(format!("{what}: layers after the fully connected layer are not supported"));
        }
        match layer {
            Layer::Con { weights, bias, shape, window, relu } => self.conv(weights, bias.as_deref(), *shape, window, *relu, what)?,
            Layer::Affine { gamma, beta } => self.affine(gamma, beta, what)?,
            Layer::Relu => self.x.name = self.graph.node("Relu", &[&self.x.name], vec![]),
            Layer::Identity => {}
            Layer::AddPrev(id) => self.add_prev(*id, what)?,
            Layer::Pool { max, window } => self.pool(*max, window, what)?,
            Layer::Fc { weights, bias, inputs, outputs } => self.fc(weights, bias.as_deref(), *inputs, *outputs, what)?,
            Layer::Tag(id) => {
                self.tags.insert(*id, self.x.clone());
            }
            Layer::Skip(id) => self.x = self.tag(*id, what)?,
        }
        Ok(())
    }

    fn tag(&self, id: u8, what: &str) -> R<Value> {
        self.tags.get(&id).cloned().ok_or_else(|| format!("{what}: tag{id} was never set"))
    }

    fn out_shape(&self, k: usize, w: &Window, what: &str) -> R<[usize; 3]> {
        let [_, rows, cols] = self.x.shape;
        let r = out_size(rows, w.size[0], w.stride[0], w.pad[0]);
        let c = out_size(cols, w.size[1], w.stride[1], w.pad[1]);
        match (r, c) {
            (Some(r), Some(c)) => Ok([k, r, c]),
            _ => Err(format!("{what}: window {:?} is larger than its {rows}x{cols} input", w.size)),
        }
    }

    fn conv(&mut self, weights: &[f32], bias: Option<&[f32]>, shape: [usize; 4], w: &Window, relu: bool, what: &str) -> R<()> {
        if shape[1] != self.x.shape[0] {
            return Err(format!("{what}: filters take {} channels, input has {}", shape[1], self.x.shape[0]));
        }
        let out = self.out_shape(shape[0], w, what)?;
        let mut inputs = vec![self.x.name.clone(), self.graph.constant("conv_w", &shape, weights.to_vec())];
        if let Some(b) = bias {
            inputs.push(self.graph.constant("conv_b", &[b.len()], b.to_vec()));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let mut attrs = window_attrs(w);
        attrs.extend([("dilations", Attr::Ints(vec![1, 1])), ("group", Attr::Int(1))]);
        let mut y = self.graph.node("Conv", &refs, attrs);
        if relu {
            y = self.graph.node("Relu", &[&y], vec![]);
        }
        self.x = Value { name: y, shape: out };
        Ok(())
    }

    /// y = gamma[c] * x + beta[c].
    fn affine(&mut self, gamma: &[f32], beta: &[f32], what: &str) -> R<()> {
        let k = self.x.shape[0];
        if gamma.len() != k {
            return Err(format!("{what}: {} scales for {k} channels", gamma.len()));
        }
        let g = self.graph.constant("bn_scale", &[k, 1, 1], gamma.to_vec());
        let b = self.graph.constant("bn_shift", &[k, 1, 1], beta.to_vec());
        let scaled = self.graph.node("Mul", &[&self.x.name, &g], vec![]);
        self.x.name = self.graph.node("Add", &[&scaled, &b], vec![]);
        Ok(())
    }

    fn pool(&mut self, max: bool, w: &Window, what: &str) -> R<()> {
        let [k, rows, cols] = self.x.shape;
        if !max && w.size == [0, 0] {
            self.x = Value { name: self.graph.node("GlobalAveragePool", &[&self.x.name], vec![]), shape: [k, 1, 1] };
            return Ok(());
        }
        let w = Window { size: [if w.size[0] == 0 { rows } else { w.size[0] }, if w.size[1] == 0 { cols } else { w.size[1] }], ..*w };
        let out = self.out_shape(k, &w, what)?;
        let mut attrs = window_attrs(&w);
        if !max {
            // dlib averages over the part of the window inside the image.
            attrs.push(("count_include_pad", Attr::Int(0)));
        }
        let op = if max { "MaxPool" } else { "AveragePool" };
        self.x = Value { name: self.graph.node(op, &[&self.x.name], attrs), shape: out };
        Ok(())
    }

    /// dlib's add: the result has the element-wise larger shape; each operand
    /// counts as zero where it does not reach (top-left aligned).
    fn add_prev(&mut self, id: u8, what: &str) -> R<()> {
        let other = self.tag(id, what)?;
        let shape = [0, 1, 2].map(|i| self.x.shape[i].max(other.shape[i]));
        let a = self.padded(&self.x.clone(), shape);
        let b = self.padded(&other, shape);
        self.x = Value { name: self.graph.node("Add", &[&a, &b], vec![]), shape };
        Ok(())
    }

    fn padded(&mut self, v: &Value, shape: [usize; 3]) -> String {
        if v.shape == shape {
            return v.name.clone();
        }
        let mut pads = vec![0i64; 5];
        pads.extend((0..3).map(|i| (shape[i] - v.shape[i]) as i64));
        let pads = self.graph.constant_i64("pads", pads);
        self.graph.node("Pad", &[&v.name, &pads], vec![("mode", Attr::Str("constant".into()))])
    }

    /// y = flatten(x) · W (+ b), W of shape (inputs, outputs).
    fn fc(&mut self, weights: &[f32], bias: Option<&[f32]>, inputs: usize, outputs: usize, what: &str) -> R<()> {
        let n: usize = self.x.shape.iter().product();
        if n != inputs {
            return Err(format!("{what}: takes {inputs} inputs, the previous layer gives {n}"));
        }
        let flat = self.graph.node("Flatten", &[&self.x.name], vec![("axis", Attr::Int(1))]);
        let w = self.graph.constant("fc_w", &[inputs, outputs], weights.to_vec());
        let mut y = self.graph.node("MatMul", &[&flat, &w], vec![]);
        if let Some(b) = bias {
            let b = self.graph.constant("fc_b", &[outputs], b.to_vec());
            y = self.graph.node("Add", &[&y, &b], vec![]);
        }
        self.x.name = y;
        self.out = Some(outputs);
        Ok(())
    }
}

/// Converts `dlib_face_recognition_resnet_model_v1.dat` to ONNX bytes.
pub fn to_onnx(bytes: &[u8]) -> R<Vec<u8>> {
    let net = parse(bytes).map_err(|e| format!("not a readable dlib face recognition model: {e}"))?;
    let mut b = Builder::new(net.rows, net.cols);
    for (i, layer) in net.layers.iter().enumerate() {
        b.emit(layer, &format!("layer {i}"))?;
    }
    let width = b.out.ok_or("the network has no fully connected output layer")?;
    b.graph.output(&b.x.name, "embedding", vec![DimSpec::Named("batch".into()), DimSpec::Size(width as i64)]);
    let [r, g, bl] = net.mean;
    let doc = format!(
        "dlib_face_recognition_resnet_model_v1 converted by faces. Input: RGB {}x{} chip as (pixel - [{r}, {g}, {bl}]) / 256, NCHW. Output: the raw 128-d dlib descriptor (not L2-normalised).",
        net.rows, net.cols
    );
    Ok(b.graph.to_model_bytes("faces dlib importer", 13, &doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(bytes: &[u8]) -> R<i64> {
        Reader::new(bytes).int("test")
    }

    fn float(bytes: &[u8]) -> R<f64> {
        Reader::new(bytes).float("test")
    }

    #[test]
    fn ints_are_sign_and_magnitude_little_endian() {
        assert_eq!(int(&[0x01, 0x00]), Ok(0));
        assert_eq!(int(&[0x01, 0x02]), Ok(2));
        assert_eq!(int(&[0x02, 0x00, 0x01]), Ok(256));
        assert_eq!(int(&[0x02, 0x80, 0x12]), Ok(4736));
        assert_eq!(int(&[0x81, 0x1c]), Ok(-28));
        assert_eq!(int(&[0x88, 0, 0, 0, 0, 0, 0, 0, 0x80]), Ok(i64::MIN));
        assert!(int(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap_err().contains("out of range"));
    }

    #[test]
    fn bad_int_control_bytes_are_errors() {
        assert!(int(&[0x00]).unwrap_err().contains("control byte"));
        assert!(int(&[0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(int(&[0x11, 0x00]).is_err());
    }

    #[test]
    fn floats_are_mantissa_then_exponent() {
        assert!((float(&[0x03, 0x0a, 0xd7, 0xa3, 0x81, 0x1c]).unwrap() - 0.04).abs() < 1e-9);
        assert_eq!(float(&[0x01, 0x10, 0x81, 0x04]), Ok(1.0));
        assert_eq!(float(&[0x01, 0x00, 0x01, 0x0b]), Ok(0.0));
        assert_eq!(float(&[0x81, 0x03, 0x01, 0x01]), Ok(-6.0));
        assert_eq!(float(&[0x81, 0x03, 0x81, 0x01]), Ok(-1.5));
        assert_eq!(float(&[0x01, 0x00, 0x02, 0x00, 0x7d]), Ok(f64::INFINITY));
        assert!(float(&[0x01, 0x00, 0x02, 0x02, 0x7d]).unwrap().is_nan());
        assert!(float(b"1.5").unwrap_err().contains("ASCII"));
    }

    #[test]
    fn truncated_values_are_errors_not_panics() {
        for bytes in [&[][..], &[0x02, 0x00], &[0x03, 0x0a, 0xd7, 0xa3], &[0x03, 0x0a, 0xd7, 0xa3, 0x81]] {
            let e = float(bytes).unwrap_err();
            assert!(e.contains("truncated"), "{e}");
        }
        assert!(Reader::new(&[0x01, 0x05, b'a', b'b']).string("s").unwrap_err().contains("truncated"));
        // A tensor header promising 4 floats with only 2 present.
        let t = [0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x02, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0x80, 0x3f];
        assert!(Reader::new(&t).tensor("t").unwrap_err().contains("truncated"));
        // Dims whose product overflows.
        let huge = [0x01, 0x02, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x02, 0x01, 0x01, 0x01, 0x01];
        assert!(Reader::new(&huge).tensor("t").is_err());
    }

    #[test]
    fn strings_bools_and_tensors_decode() {
        let mut r = Reader::new(b"\x01\x04relu10\x01\x02\x01\x01\x01\x01\x01\x01\x01\x02\x00\x00\x80\x3f\x00\x00\x00\xc0");
        assert_eq!(r.expect(&["relu_", "relu"], "s"), Ok("relu".into()));
        assert_eq!((r.bool("b"), r.bool("b")), (Ok(true), Ok(false)));
        assert_eq!(r.tensor("t"), Ok(vec![1.0, -2.0]));
        assert_eq!(r.pos, r.buf.len());
        assert!(Reader::new(b"x").bool("b").is_err());
    }

    #[test]
    fn output_sizes_follow_dlib() {
        assert_eq!(out_size(150, 7, 2, 0), Some(72));
        assert_eq!(out_size(72, 3, 2, 0), Some(35));
        assert_eq!(out_size(35, 3, 2, 0), Some(17));
        assert_eq!(out_size(35, 2, 2, 0), Some(17));
        assert_eq!(out_size(8, 3, 2, 0), Some(3));
        assert_eq!(out_size(8, 2, 2, 0), Some(4));
        assert_eq!(out_size(35, 3, 1, 1), Some(35));
        assert_eq!(out_size(2, 3, 1, 0), None);
    }

    #[test]
    fn schema_has_the_130_wrappers_of_the_resnet() {
        let chain = schema();
        assert_eq!(chain.len(), 130);
        assert_eq!(chain.iter().filter(|s| matches!(s, Step::Con { .. })).count(), 29);
        assert_eq!(chain.iter().filter(|s| matches!(s, Step::Tag(_) | Step::Skip(_))).count(), 22);
    }

    #[test]
    fn wrong_files_are_rejected_with_a_reason() {
        assert!(to_onnx(b"").unwrap_err().contains("truncated"));
        assert!(to_onnx(b"TFL3 not dlib").is_err());
        let mut head = vec![0x01, 0x01, 0x01, 0x0d];
        head.extend_from_slice(b"loss_metric_2");
        assert!(to_onnx(&head).unwrap_err().contains("truncated"));
        head[3] = 0x05;
        assert!(to_onnx(&head).unwrap_err().contains("expected"));
    }

    /// Converts the real model: `FACES_DLIB_DAT=path/to/dlib_face_recognition_resnet_model_v1.dat
    /// cargo test -p faces-core dlib -- --ignored`. Writes the ONNX to `$FACES_DLIB_ONNX_OUT` when
    /// set, and checks that every truncation of the file is refused cleanly.
    #[test]
    #[ignore = "needs FACES_DLIB_DAT"]
    fn converts_the_real_model() {
        let path = std::env::var("FACES_DLIB_DAT").expect("set FACES_DLIB_DAT");
        let bytes = std::fs::read(&path).expect("read the .dat");
        let onnx = to_onnx(&bytes).expect("convert");
        if let Ok(out) = std::env::var("FACES_DLIB_ONNX_OUT") {
            std::fs::write(out, &onnx).expect("write the ONNX");
        }
        for cut in (0..bytes.len()).step_by(9973).chain([bytes.len() - 1]) {
            assert!(to_onnx(&bytes[..cut]).is_err(), "prefix of {cut} bytes accepted");
        }
        // Corrupt bytes must never panic (whatever the result); most land in headers here.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bad = bytes.clone();
            let at = (seed % 4000) as usize + if seed.is_multiple_of(3) { (seed >> 20) as usize % bytes.len() } else { 0 };
            bad[at.min(bytes.len() - 1)] ^= (seed >> 8) as u8 | 1;
            let _ = to_onnx(&bad);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(to_onnx(&longer).unwrap_err().contains("unexpected bytes"));
    }
}
