//! TensorFlow Lite flatbuffer -> ONNX. Reads the flatbuffer by hand (slots
//! from `tensorflow/lite/schema/schema.fbs`) and maps the float ops a face
//! recogniser uses to ONNX in NCHW: CONV_2D, DEPTHWISE_CONV_2D, ADD, SUB, MUL,
//! RELU, ABS, PRELU and a final RESHAPE. The five-op PReLU that the TOCO
//! converter writes (`relu(x) + c * (x - |x|)`) becomes one `PRelu(x, 2c)`.
//! The input stays NHWC (a Transpose follows it) and the batch is dynamic.

use crate::models::onnx::{Attr, DimSpec, Graph};

type R<T> = Result<T, String>;

// BuiltinOperator codes.
const ADD: i32 = 0;
const CONV_2D: i32 = 3;
const DEPTHWISE_CONV_2D: i32 = 4;
const MUL: i32 = 18;
const RELU: i32 = 19;
const RESHAPE: i32 = 22;
const SUB: i32 = 41;
const PRELU: i32 = 54;
const ABS: i32 = 101;
const FLOAT32: i8 = 0;

/// A table in the flatbuffer: its position and the buffer.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn read<const N: usize>(buf: &[u8], pos: usize) -> R<[u8; N]> {
    buf.get(pos..pos + N).and_then(|s| s.try_into().ok()).ok_or_else(|| format!("offset {pos} is outside the file (truncated?)"))
}

fn u32_at(buf: &[u8], pos: usize) -> R<u32> {
    read::<4>(buf, pos).map(u32::from_le_bytes)
}

impl<'a> Table<'a> {
    fn root(buf: &'a [u8]) -> R<Self> {
        if buf.get(4..8) != Some(b"TFL3") {
            return Err("not a TensorFlow Lite file (no TFL3 identifier)".into());
        }
        Ok(Table { buf, pos: u32_at(buf, 0)? as usize })
    }

    /// Position of a field, or None when absent (use the default).
    fn field(&self, slot: usize) -> R<Option<usize>> {
        let soffset = i32::from_le_bytes(read::<4>(self.buf, self.pos)?);
        let vtable = (self.pos as i64 - i64::from(soffset)) as usize;
        let vt_size = usize::from(u16::from_le_bytes(read::<2>(self.buf, vtable)?));
        let entry = 4 + 2 * slot;
        if entry + 2 > vt_size {
            return Ok(None);
        }
        let off = u16::from_le_bytes(read::<2>(self.buf, vtable + entry)?);
        Ok((off != 0).then_some(self.pos + usize::from(off)))
    }

    fn scalar<const N: usize>(&self, slot: usize) -> R<Option<[u8; N]>> {
        self.field(slot)?.map(|p| read::<N>(self.buf, p)).transpose()
    }

    fn i8(&self, slot: usize, default: i8) -> R<i8> {
        Ok(self.scalar::<1>(slot)?.map_or(default, |b| b[0] as i8))
    }

    fn i32(&self, slot: usize, default: i32) -> R<i32> {
        Ok(self.scalar::<4>(slot)?.map_or(default, i32::from_le_bytes))
    }

    fn u64(&self, slot: usize) -> R<u64> {
        Ok(self.scalar::<8>(slot)?.map_or(0, u64::from_le_bytes))
    }

    /// Follows an offset field to its target.
    fn target(&self, slot: usize) -> R<Option<usize>> {
        match self.field(slot)? {
            Some(p) => Ok(Some(p + u32_at(self.buf, p)? as usize)),
            None => Ok(None),
        }
    }

    fn table(&self, slot: usize) -> R<Option<Table<'a>>> {
        Ok(self.target(slot)?.map(|pos| Table { buf: self.buf, pos }))
    }

    /// A vector's element count and the position of its first element.
    fn vector(&self, slot: usize) -> R<(usize, usize)> {
        match self.target(slot)? {
            Some(p) => Ok((u32_at(self.buf, p)? as usize, p + 4)),
            None => Ok((0, 0)),
        }
    }

    fn tables(&self, slot: usize) -> R<Vec<Table<'a>>> {
        let (n, start) = self.vector(slot)?;
        (0..n)
            .map(|i| {
                let p = start + 4 * i;
                Ok(Table { buf: self.buf, pos: p + u32_at(self.buf, p)? as usize })
            })
            .collect()
    }

    fn i32s(&self, slot: usize) -> R<Vec<i32>> {
        let (n, start) = self.vector(slot)?;
        (0..n).map(|i| read::<4>(self.buf, start + 4 * i).map(i32::from_le_bytes)).collect()
    }

    fn bytes(&self, slot: usize) -> R<&'a [u8]> {
        let (n, start) = self.vector(slot)?;
        self.buf.get(start..start + n).ok_or_else(|| "vector runs past the end of the file".to_string())
    }

    fn string(&self, slot: usize) -> R<String> {
        Ok(String::from_utf8_lossy(self.bytes(slot)?).into_owned())
    }
}

struct TensorInfo {
    shape: Vec<usize>,
    name: String,
    /// Constant data as floats, when the tensor has a non-empty buffer.
    data: Option<Vec<f32>>,
}

struct Op<'a> {
    code: i32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    options: Option<Table<'a>>,
}

/// Converts a float TFLite model with one subgraph, one input and one output to ONNX.
pub fn to_onnx(bytes: &[u8]) -> R<Vec<u8>> {
    let model = Table::root(bytes)?;
    let codes: Vec<i32> = model
        .tables(1)?
        .iter()
        .map(|c| Ok(i32::from(c.i8(0, 0)?).max(c.i32(3, 0)?)))
        .collect::<R<_>>()?;
    let buffers = model.tables(4)?;
    let subgraphs = model.tables(2)?;
    let [graph] = subgraphs.as_slice() else { return Err(format!("expected one subgraph, found {}", subgraphs.len())) };
    let tensors = graph.tables(0)?.iter().map(|t| tensor_info(t, &buffers, bytes)).collect::<R<Vec<_>>>()?;
    let ops = graph
        .tables(3)?
        .iter()
        .map(|o| {
            let index = usize::try_from(o.i32(0, 0)?).map_err(|_| "negative opcode index".to_string())?;
            let code = *codes.get(index).ok_or("opcode index out of range")?;
            Ok(Op { code, inputs: o.i32s(1)?, outputs: o.i32s(2)?, options: o.table(4)? })
        })
        .collect::<R<Vec<_>>>()?;
    let (inputs, outputs) = (graph.i32s(1)?, graph.i32s(2)?);
    let ([input], [output]) = (inputs.as_slice(), outputs.as_slice()) else {
        return Err("expected one input and one output".into());
    };
    Converter::new(&tensors, &ops).run(*input as usize, *output as usize)
}

fn tensor_info(t: &Table, buffers: &[Table], file: &[u8]) -> R<TensorInfo> {
    let shape = t.i32s(0)?.iter().map(|&d| usize::try_from(d).unwrap_or(1)).collect();
    let name = t.string(3)?;
    let buffer = buffers.get(t.i32(2, 0)? as usize).ok_or_else(|| format!("tensor {name}: buffer index out of range"))?;
    let mut raw = buffer.bytes(0)?;
    let (offset, size) = (buffer.u64(1)?, buffer.u64(2)?);
    if raw.is_empty() && offset > 1 {
        raw = file.get(offset as usize..(offset + size) as usize).ok_or("external buffer outside the file")?;
    }
    let quantized = match t.table(4)? {
        Some(q) => q.vector(2)?.0 > 0,
        None => false,
    };
    if quantized {
        return Err(format!("tensor {name} is quantized; only float models are supported"));
    }
    let dtype = t.i8(1, FLOAT32)?;
    let data = if raw.is_empty() {
        None
    } else if dtype == FLOAT32 {
        Some(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    } else {
        // Integer constants (reshape targets) are read where needed, never as weights.
        Some(Vec::new())
    };
    Ok(TensorInfo { shape, name, data })
}

struct Converter<'t> {
    tensors: &'t [TensorInfo],
    ops: &'t [Op<'t>],
    graph: Graph,
    /// ONNX value name of each computed tensor.
    names: Vec<Option<String>>,
    consumers: Vec<usize>,
}

impl<'t> Converter<'t> {
    fn new(tensors: &'t [TensorInfo], ops: &'t [Op<'t>]) -> Self {
        let mut consumers = vec![0; tensors.len()];
        for op in ops {
            for &i in op.inputs.iter().filter(|&&i| i >= 0) {
                if let Some(c) = consumers.get_mut(i as usize) {
                    *c += 1;
                }
            }
        }
        Converter { tensors, ops, graph: Graph::new("tflite"), names: vec![None; tensors.len()], consumers }
    }

    fn run(mut self, input: usize, output: usize) -> R<Vec<u8>> {
        let shape = &self.tensor(input as i32)?.shape;
        let [_, h, w, c] = shape[..] else { return Err(format!("input must be NHWC, has shape {shape:?}")) };
        let dims = vec![DimSpec::Named("batch".into()), DimSpec::Size(h as i64), DimSpec::Size(w as i64), DimSpec::Size(c as i64)];
        let x = self.graph.input("input", dims);
        self.names[input] = Some(self.graph.node("Transpose", &[&x], vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))]));
        let mut i = 0;
        while i < self.ops.len() {
            i += self.convert_at(i)?;
        }
        let out = self.value(output as i32)?;
        let width = self.tensor(output as i32)?.shape.last().copied().unwrap_or(0) as i64;
        self.graph.output(&out, "embedding", vec![DimSpec::Named("batch".into()), DimSpec::Size(width)]);
        Ok(self.graph.to_model_bytes("faces tflite importer", 13, "converted from TensorFlow Lite by faces"))
    }

    fn tensor(&self, i: i32) -> R<&'t TensorInfo> {
        self.tensors.get(usize::try_from(i).map_err(|_| "missing tensor")?).ok_or_else(|| format!("tensor index {i} out of range"))
    }

    fn constant(&self, i: i32) -> R<&'t [f32]> {
        let t = self.tensor(i)?;
        t.data.as_deref().filter(|d| !d.is_empty()).ok_or_else(|| format!("{} must be a float constant", t.name))
    }

    /// ONNX name of a computed tensor, or a new initializer for a constant one
    /// (per-channel [C] constants become [C,1,1] to broadcast over NCHW).
    fn value(&mut self, i: i32) -> R<String> {
        if let Some(name) = self.names.get(i as usize).cloned().flatten() {
            return Ok(name);
        }
        let t = self.tensor(i)?;
        let data = self.constant(i)?.to_vec();
        let dims: Vec<usize> = if t.shape.len() == 1 { vec![t.shape[0], 1, 1] } else { t.shape.clone() };
        Ok(self.graph.constant(&t.name, &dims, data))
    }

    fn set(&mut self, tensor: i32, name: String) {
        self.names[tensor as usize] = Some(name);
    }

    /// Converts the op at `i` (and the ones it fuses); returns how many ops it consumed.
    fn convert_at(&mut self, i: usize) -> R<usize> {
        if let Some(fused) = self.prelu_pattern(i)? {
            return Ok(fused);
        }
        let op = &self.ops[i];
        let out = *op.outputs.first().ok_or("op without output")?;
        let result = match op.code {
            CONV_2D | DEPTHWISE_CONV_2D => self.conv(op)?,
            ADD | SUB | MUL => {
                let (a, b) = (self.value(op.inputs[0])?, self.value(op.inputs[1])?);
                let name = match op.code {
                    ADD => "Add",
                    SUB => "Sub",
                    _ => "Mul",
                };
                let y = self.graph.node(name, &[&a, &b], vec![]);
                let act = op.options.map(|o| o.i8(0, 0)).transpose()?.unwrap_or(0);
                self.activation(y, act)?
            }
            RELU | ABS => {
                let x = self.value(op.inputs[0])?;
                self.graph.node(if op.code == RELU { "Relu" } else { "Abs" }, &[&x], vec![])
            }
            PRELU => {
                let x = self.value(op.inputs[0])?;
                let alpha = self.constant(op.inputs[1])?.to_vec();
                let slope = self.graph.constant("slope", &[alpha.len(), 1, 1], alpha);
                self.graph.node("PRelu", &[&x, &slope], vec![])
            }
            RESHAPE => self.flatten(op)?,
            other => return Err(format!("TFLite operator {other} is not supported by this importer")),
        };
        self.set(out, result);
        Ok(1)
    }

    /// `r = relu(x); a = abs(x); s = x - a; p = c * s; y = r + p` is `prelu(x, 2c)`.
    fn prelu_pattern(&mut self, i: usize) -> R<Option<usize>> {
        let Some(window) = self.ops.get(i..i + 5) else { return Ok(None) };
        let codes: Vec<i32> = window.iter().map(|o| o.code).collect();
        if codes != [RELU, ABS, SUB, MUL, ADD] {
            return Ok(None);
        }
        let (relu, abs, sub, mul, add) = (&window[0], &window[1], &window[2], &window[3], &window[4]);
        let x = relu.inputs[0];
        let (r, a, s, p) = (relu.outputs[0], abs.outputs[0], sub.outputs[0], mul.outputs[0]);
        let other = |pair: &[i32], known: i32| if pair[0] == known { Some(pair[1]) } else if pair[1] == known { Some(pair[0]) } else { None };
        let matches = abs.inputs[0] == x
            && sub.inputs == [x, a]
            && other(&add.inputs, r) == Some(p)
            && [r, a, s, p].iter().all(|&t| self.consumers[t as usize] == 1);
        let Some(c) = other(&mul.inputs, s).filter(|_| matches) else { return Ok(None) };
        let Ok(c) = self.constant(c) else { return Ok(None) };
        let slope: Vec<f32> = c.iter().map(|v| 2.0 * v).collect();
        let input = self.value(x)?;
        let slope = self.graph.constant("prelu_slope", &[slope.len(), 1, 1], slope);
        let y = self.graph.node("PRelu", &[&input, &slope], vec![]);
        self.set(add.outputs[0], y);
        Ok(Some(5))
    }

    fn conv(&mut self, op: &Op) -> R<String> {
        let depthwise = op.code == DEPTHWISE_CONV_2D;
        let o = op.options.ok_or("convolution without options")?;
        // Conv2DOptions: padding 0, stride_w 1, stride_h 2, act 3, dil_w 4, dil_h 5.
        // DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2, multiplier 3, act 4, dil_w 5, dil_h 6.
        let (act_slot, dil_slot) = if depthwise { (4, 5) } else { (3, 4) };
        let (padding, sw, sh) = (o.i8(0, 0)?, o.i32(1, 1)?, o.i32(2, 1)?);
        let (dw, dh) = (o.i32(dil_slot, 1)?, o.i32(dil_slot + 1, 1)?);
        let x_shape = self.tensor(op.inputs[0])?.shape.clone();
        let w_info = self.tensor(op.inputs[1])?;
        let w = self.constant(op.inputs[1])?;
        let [d0, kh, kw, d3] = w_info.shape[..] else { return Err(format!("{}: weights must be 4-D", w_info.name)) };
        let [_, ih, iw, cin] = x_shape[..] else { return Err("convolution input must be NHWC".into()) };
        // OHWI -> OIHW; depthwise [1, KH, KW, C*M] -> [C*M, 1, KH, KW].
        let (out_ch, in_per_group, group) = if depthwise { (d3, 1, cin) } else { (d0, d3, 1) };
        let mut weights = vec![0.0f32; w.len()];
        for oc in 0..out_ch {
            for y in 0..kh {
                for x in 0..kw {
                    for ic in 0..in_per_group {
                        let src = if depthwise { (y * kw + x) * d3 + oc } else { ((oc * kh + y) * kw + x) * d3 + ic };
                        weights[((oc * in_per_group + ic) * kh + y) * kw + x] = w[src];
                    }
                }
            }
        }
        let pads = match padding {
            0 => {
                let (t, b) = same_padding(ih, kh, sh as usize, dh as usize);
                let (l, r) = same_padding(iw, kw, sw as usize, dw as usize);
                vec![t, l, b, r]
            }
            1 => vec![0; 4],
            p => return Err(format!("unknown padding {p}")),
        };
        let x = self.value(op.inputs[0])?;
        let weight = self.graph.constant(&w_info.name, &[out_ch, in_per_group, kh, kw], weights);
        let mut inputs = vec![x, weight];
        if let Some(&b) = op.inputs.get(2).filter(|&&b| b >= 0) {
            let bias = self.constant(b)?.to_vec();
            inputs.push(self.graph.constant(&self.tensor(b)?.name, &[bias.len()], bias));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let y = self.graph.node(
            "Conv",
            &refs,
            vec![
                ("kernel_shape", Attr::Ints(vec![kh as i64, kw as i64])),
                ("strides", Attr::Ints(vec![i64::from(sh), i64::from(sw)])),
                ("dilations", Attr::Ints(vec![i64::from(dh), i64::from(dw)])),
                ("pads", Attr::Ints(pads)),
                ("group", Attr::Int(group as i64)),
            ],
        );
        self.activation(y, o.i8(act_slot, 0)?)
    }

    fn activation(&mut self, y: String, act: i8) -> R<String> {
        match act {
            0 => Ok(y),
            1 => Ok(self.graph.node("Relu", &[&y], vec![])),
            3 => {
                let (lo, hi) = (self.graph.constant("zero", &[], vec![0.0]), self.graph.constant("six", &[], vec![6.0]));
                Ok(self.graph.node("Clip", &[&y, &lo, &hi], vec![]))
            }
            a => Err(format!("fused activation {a} is not supported")),
        }
    }

    /// RESHAPE of [N,1,1,C] to [N,C]: NHWC and NCHW agree, so Flatten keeps the batch dynamic.
    fn flatten(&mut self, op: &Op) -> R<String> {
        let shape = &self.tensor(op.inputs[0])?.shape;
        let out = &self.tensor(op.outputs[0])?.shape;
        if shape.len() != 4 || shape[1] != 1 || shape[2] != 1 || out.len() != 2 {
            return Err(format!("RESHAPE from {shape:?} to {out:?} is not supported (only [N,1,1,C] -> [N,C])"));
        }
        let x = self.value(op.inputs[0])?;
        Ok(self.graph.node("Flatten", &[&x], vec![("axis", Attr::Int(1))]))
    }
}

/// TensorFlow's SAME padding for one axis: (before, after), the odd pixel after.
fn same_padding(size: usize, kernel: usize, stride: usize, dilation: usize) -> (i64, i64) {
    let out = size.div_ceil(stride.max(1));
    let needed = ((out.saturating_sub(1)) * stride + (kernel - 1) * dilation + 1).saturating_sub(size);
    ((needed / 2) as i64, (needed - needed / 2) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        assert_eq!(same_padding(112, 3, 2, 1), (0, 1));
        assert_eq!(same_padding(56, 3, 1, 1), (1, 1));
        assert_eq!(same_padding(7, 1, 1, 1), (0, 0));
    }

    #[test]
    fn rejects_files_that_are_not_tflite() {
        assert!(to_onnx(b"not a model at all").unwrap_err().contains("TFL3"));
        assert!(to_onnx(&[0, 0, 0, 0]).is_err());
    }
}
