//! Weights-only files: SafeTensors (`safetensors.torch.save_file(model.state_dict())`) and
//! PyTorch state_dicts (`torch.save(model.state_dict())`), read as named tensors; and the
//! architecture inferred from the names and shapes of an `nn.Sequential` of `Linear` and
//! `Conv2d` layers (`0.weight [128, 64]`, `2.weight [128, 128]`, ...).

use std::path::Path;

use crate::graph::{Act, Graph, Node, Op, Tensor};

/// A tensor by its state_dict name.
pub(crate) type Named = (String, Tensor);

fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let value = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalize.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(value)
}

/// Little-endian bytes of a float dtype as f32; `None` for dtypes that are not floats.
fn floats(bytes: &[u8], kind: FloatKind) -> Vec<f32> {
    match kind {
        FloatKind::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        FloatKind::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        FloatKind::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        FloatKind::Bf16 => bytes
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
    }
}

#[derive(Clone, Copy)]
enum FloatKind {
    F32,
    F64,
    F16,
    Bf16,
}

/// The float tensors of a SafeTensors file (integer tensors such as `num_batches_tracked`
/// are left out).
pub(crate) fn read_safetensors(bytes: &[u8]) -> Result<Vec<Named>, String> {
    use safetensors::{Dtype, SafeTensors};
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, view) in file.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => FloatKind::F32,
            Dtype::F64 => FloatKind::F64,
            Dtype::F16 => FloatKind::F16,
            Dtype::BF16 => FloatKind::Bf16,
            _ => continue,
        };
        let values = floats(view.data(), kind);
        let tensor = Tensor::new(view.shape().to_vec(), values)
            .ok_or_else(|| format!("tensor {name:?}: its data does not fill its shape"))?;
        out.push((name, tensor));
    }
    Ok(out)
}

/// The float tensors of a PyTorch state_dict file (`.pt`/`.pth`).
pub(crate) fn read_pytorch(path: &Path) -> Result<Vec<Named>, String> {
    use pytorch_reader::{DType, PytorchReader};
    let reader = PytorchReader::new(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, tensor) in reader.tensors() {
        let kind = match tensor.dtype() {
            DType::F32 => FloatKind::F32,
            DType::F64 => FloatKind::F64,
            DType::F16 => FloatKind::F16,
            DType::BF16 => FloatKind::Bf16,
            _ => continue,
        };
        let bytes = tensor.read().map_err(|e| e.to_string())?;
        let values = floats(&bytes, kind);
        let tensor = Tensor::new(tensor.shape().to_vec(), values)
            .ok_or_else(|| format!("tensor {name:?}: its data does not fill its shape"))?;
        out.push((name.clone(), tensor));
    }
    Ok(out)
}

/// True when the bytes of a `.pt` file name a pickled `torch.nn` module class: the file is
/// `torch.save(model)`, not `torch.save(model.state_dict())`. PyTorch stores `data.pkl`
/// uncompressed, so the class path appears verbatim.
pub(crate) fn is_pickled_module(bytes: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"torch.nn.modules";
    bytes.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// Orders names as `nn.Sequential` numbers them: numeric parts compared as numbers
/// (`2.weight` before `10.weight`), the rest as text.
fn natural_key(name: &str) -> Vec<(u64, String)> {
    name.split('.')
        .map(|part| match part.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, part.to_string()),
        })
        .collect()
}

/// What to assume about a weights-only file.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumptions {
    /// The activation after every hidden layer.
    pub activation: Act,
    /// The activation on the output, if any.
    pub output_activation: Option<Act>,
    /// The module names in forward order, when the file's names are not `nn.Sequential`'s
    /// numbers (empty: the names must be numbers).
    pub order: Vec<String>,
}

/// The `nn.Sequential` the names and shapes describe: each module prefix (`0`, `features.3`)
/// with a 2-d `weight` is a `Linear`, with a 4-d `weight` a `Conv2d` (3x3 with padding 1 and
/// such, "same" padding, followed by the activation and 2x2 max pooling); a prefix with
/// `running_mean` and `running_var` is a batch norm. The activation goes after every hidden
/// layer. Returns `(graph, problem)`: an error names the tensor.
pub(crate) fn infer(tensors: Vec<Named>, assume: &Assumptions) -> Result<Graph, (String, String)> {
    if tensors.is_empty() {
        return Err(("(file)".into(), "the file holds no float tensors".into()));
    }
    let mut modules: Vec<(String, Vec<(String, Tensor)>)> = Vec::new();
    let mut sorted = tensors;
    sorted.sort_by_key(|(n, _)| natural_key(n));
    for (name, tensor) in sorted {
        let (prefix, field) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        let (prefix, field) = (prefix.to_string(), field.to_string());
        match modules.iter_mut().find(|(p, _)| *p == prefix) {
            Some((_, fields)) => fields.push((field, tensor)),
            None => modules.push((prefix, vec![(field, tensor)])),
        }
    }
    // The order of the layers: nn.Sequential numbers them, which the natural sort above
    // follows; any other names say nothing about the order, so the user lists them.
    let numbered = modules
        .iter()
        .all(|(p, _)| p.split('.').any(|part| part.parse::<u64>().is_ok()));
    if !assume.order.is_empty() {
        for (prefix, _) in &modules {
            if !assume.order.contains(prefix) {
                return Err((
                    prefix.clone(),
                    format!(
                        "a module the layer list ({}) does not name",
                        assume.order.join(", ")
                    ),
                ));
            }
        }
        if let Some(missing) = assume
            .order
            .iter()
            .find(|n| !modules.iter().any(|(p, _)| p == *n))
        {
            return Err((
                missing.clone(),
                "listed in [source] layers, but the file has no tensors under this name".into(),
            ));
        }
        modules.sort_by_key(|(p, _)| assume.order.iter().position(|n| n == p));
    } else if !numbered {
        let names: Vec<&str> = modules.iter().map(|(p, _)| p.as_str()).collect();
        return Err((
            names.join(", "),
            format!(
                "the module names do not give the layer order (nn.Sequential numbers them); list them in forward order in a --spec file: [source] layers = [{}]",
                names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut layers: Vec<Node> = Vec::new();
    for (prefix, mut fields) in modules {
        let mut take = |f: &str| {
            fields
                .iter()
                .position(|(n, _)| n == f)
                .map(|i| fields.remove(i).1)
        };
        let full = |f: &str| {
            if prefix.is_empty() {
                f.to_string()
            } else {
                format!("{prefix}.{f}")
            }
        };
        let weight = take("weight");
        let bias = take("bias");
        let mean = take("running_mean");
        let var = take("running_var");
        let op = match (weight, mean, var) {
            (Some(w), None, None) if w.shape.len() == 2 => Op::Dense {
                bias: bias.map(|b| b.values),
                weight: w,
            },
            (Some(w), None, None) if w.shape.len() == 4 => {
                let k = w.shape[2];
                Op::Conv {
                    bias: bias.map(|b| b.values),
                    stride: [1, 1],
                    padding: [k / 2; 4],
                    dilation: [1, 1],
                    groups: 1,
                    weight: w,
                }
            }
            (w, Some(mean), Some(var)) => {
                let n = mean.values.len();
                Op::BatchNorm {
                    scale: w.map_or(vec![1.0; n], |w| w.values),
                    shift: bias.map_or(vec![0.0; n], |b| b.values),
                    mean: mean.values,
                    var: var.values,
                    epsilon: 1e-5,
                }
            }
            (Some(w), _, _) => {
                return Err((
                    full("weight"),
                    format!(
                        "a weight of shape {:?}: only Linear ([out, in]) and Conv2d ([out, in, kh, kw]) weights are understood",
                        w.shape
                    ),
                ))
            }
            (None, _, _) => {
                let first = fields.first().map(|(f, _)| f.clone()).unwrap_or_else(|| "bias".into());
                return Err((full(&first), "a tensor that belongs to no Linear, Conv2d or BatchNorm layer".into()));
            }
        };
        if let Some((field, _)) = fields.first() {
            return Err((full(field), "a tensor this tool does not understand".into()));
        }
        layers.push(Node { name: prefix, op });
    }
    // Put activations (and pooling after convolutions) between the layers.
    let weighted = layers
        .iter()
        .filter(|n| matches!(n.op, Op::Dense { .. } | Op::Conv { .. }))
        .count();
    let mut nodes = Vec::new();
    let mut seen = 0;
    let mut iter = layers.into_iter().peekable();
    while let Some(node) = iter.next() {
        let is_conv = matches!(node.op, Op::Conv { .. });
        let is_weighted = is_conv || matches!(node.op, Op::Dense { .. });
        let name = node.name.clone();
        nodes.push(node);
        if !is_weighted {
            continue;
        }
        seen += 1;
        if let Some(bn) = iter.next_if(|n| matches!(n.op, Op::BatchNorm { .. })) {
            nodes.push(bn);
        }
        let last = seen == weighted;
        if last {
            if let Some(a) = assume.output_activation {
                nodes.push(Node {
                    name: format!("{name} (output activation)"),
                    op: Op::Act(a),
                });
            }
            continue;
        }
        nodes.push(Node {
            name: format!("{name} (activation)"),
            op: Op::Act(assume.activation),
        });
        if is_conv {
            nodes.push(Node {
                name: format!("{name} (pooling)"),
                op: Op::Pool {
                    max: true,
                    kernel: [2, 2],
                    stride: [2, 2],
                    padding: [0; 4],
                },
            });
            if !iter.peek().is_some_and(|n| matches!(n.op, Op::Conv { .. })) {
                nodes.push(Node {
                    name: format!("{name} (flatten)"),
                    op: Op::Flatten,
                });
            }
        }
    }
    Ok(Graph { input: None, nodes })
}
