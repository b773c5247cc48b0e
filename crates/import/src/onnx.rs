//! ONNX (what `torch.onnx.export` writes, opset 13 and later) to a [`Graph`].
//!
//! The file is decoded with `prost` into the few ONNX messages this needs (model, graph, node,
//! attribute, tensor, value info); every node keeps the name and operator the file gives it,
//! so an error points at the user's own node. The graph must be a chain: each node consumes
//! the previous node's output (and constants).

use std::collections::HashMap;

use prost::Message;

use crate::graph::{Act, Graph, Node, Op, Tensor};

/// ONNX's `ModelProto`, the fields read here.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    pub domain: String,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<DimensionProto>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct DimensionProto {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// Why an ONNX file was refused, before its path is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OnnxError {
    /// Not decodable, or not a model.
    Corrupt(String),
    /// An operator this tool cannot represent: (op, node, why).
    Unsupported(String, String, String),
    /// A node arranged in a way this tool cannot follow: (node, problem).
    Layout(String, String),
}

const FLOAT: i32 = 1;
const DOUBLE: i32 = 11;
const INT64: i32 = 7;
const EXTERNAL: i32 = 1;

/// A constant's values as f32 (FLOAT or DOUBLE; INT64 converted, for shapes).
fn tensor_values(t: &TensorProto) -> Result<Tensor, String> {
    if t.data_location == EXTERNAL {
        return Err(format!(
            "tensor {:?} keeps its data in an external file: export the model with its weights inside (the default for small models)",
            t.name
        ));
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| format!("tensor {:?} has a negative dimension {d}", t.name))
        })
        .collect::<Result<_, _>>()?;
    let values: Vec<f32> = match t.data_type {
        FLOAT if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(4) {
                return Err(format!("tensor {:?}: {} raw bytes are not whole floats", t.name, t.raw_data.len()));
            }
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        FLOAT => t.float_data.clone(),
        DOUBLE if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        DOUBLE => t.double_data.iter().map(|&v| v as f32).collect(),
        INT64 if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        INT64 => t.int64_data.iter().map(|&v| v as f32).collect(),
        other => {
            return Err(format!(
                "tensor {:?} has ONNX data type {other}: only float, double and int64 constants are read",
                t.name
            ))
        }
    };
    Tensor::new(shape.clone(), values).ok_or_else(|| {
        format!(
            "tensor {:?}: its data does not fill its shape {shape:?}",
            t.name
        )
    })
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn ints2(node: &NodeProto, name: &str, default: [usize; 2]) -> Result<[usize; 2], OnnxError> {
    match attr(node, name) {
        None => Ok(default),
        Some(a) => match a.ints[..] {
            [x, y] if x >= 0 && y >= 0 => Ok([x as usize, y as usize]),
            _ => Err(OnnxError::Layout(
                node_label(node),
                format!(
                    "attribute {name} = {:?}: expected two non-negative values (a 2-d operator)",
                    a.ints
                ),
            )),
        },
    }
}

fn pads(node: &NodeProto) -> Result<[usize; 4], OnnxError> {
    if let Some(a) = attr(node, "auto_pad") {
        let mode = String::from_utf8_lossy(&a.s);
        if mode != "NOTSET" && !mode.is_empty() {
            return Err(OnnxError::Unsupported(
                node.op_type.clone(),
                node_label(node),
                format!("auto_pad = {mode} is not supported: export with explicit padding"),
            ));
        }
    }
    match attr(node, "pads") {
        None => Ok([0; 4]),
        // ONNX: [top, left, bottom, right] (begins, then ends).
        Some(a) => match a.ints[..] {
            [t, l, b, r] if [t, l, b, r].iter().all(|&v| v >= 0) => {
                Ok([t as usize, l as usize, b as usize, r as usize])
            }
            _ => Err(OnnxError::Layout(
                node_label(node),
                format!("pads = {:?}: expected four non-negative values", a.ints),
            )),
        },
    }
}

fn node_label(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} -> {}", node.op_type, node.output.join(","))
    } else {
        node.name.clone()
    }
}

/// Decodes an ONNX model and turns its chain of nodes into a [`Graph`].
pub(crate) fn read(bytes: &[u8]) -> Result<Graph, OnnxError> {
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Corrupt(e.to_string()))?;
    let graph = model
        .graph
        .ok_or_else(|| OnnxError::Corrupt("the file holds no graph".into()))?;
    if graph.node.is_empty() {
        return Err(OnnxError::Corrupt("the graph has no nodes".into()));
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version);
    if let Some(v) = opset {
        if v < 13 {
            return Err(OnnxError::Corrupt(format!(
                "opset {v}: this tool reads opset 13 and later (torch.onnx.export(..., opset_version=17))"
            )));
        }
    }
    let mut constants: HashMap<String, Tensor> = HashMap::new();
    for init in &graph.initializer {
        let t = tensor_values(init).map_err(OnnxError::Corrupt)?;
        constants.insert(init.name.clone(), t);
    }
    // The data input: the first graph input that is not an initializer.
    let input = graph
        .input
        .iter()
        .find(|i| !constants.contains_key(&i.name))
        .ok_or_else(|| OnnxError::Corrupt("the graph has no data input".into()))?;
    let input_shape = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .and_then(|s| {
            s.dim
                .iter()
                .skip(1)
                .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as usize))
                .collect::<Option<Vec<usize>>>()
        });
    // Constants first (initializers above, Constant nodes here), so that every node can tell
    // its constant inputs from the data flowing through the chain.
    let mut computing = Vec::new();
    for node in &graph.node {
        if node.op_type == "Constant" {
            let value = attr(node, "value")
                .and_then(|a| a.t.as_ref())
                .ok_or_else(|| {
                    OnnxError::Layout(node_label(node), "a Constant without a tensor value".into())
                })?;
            let t = tensor_values(value).map_err(OnnxError::Corrupt)?;
            for out in &node.output {
                constants.insert(out.clone(), t.clone());
            }
        } else {
            computing.push(node.clone());
        }
    }
    let computing = fuse_gelu(computing, &constants);
    let mut current = input.name.clone();
    let mut nodes = Vec::new();
    for node in &computing {
        let label = node_label(node);
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(OnnxError::Unsupported(
                format!("{}::{}", node.domain, node.op_type),
                label,
                "operators outside the standard ONNX domain cannot be read".into(),
            ));
        }
        let data_inputs: Vec<&String> = node
            .input
            .iter()
            .filter(|i| !i.is_empty() && !constants.contains_key(*i))
            .collect();
        if data_inputs.len() != 1 || data_inputs[0] != &current {
            return Err(OnnxError::Layout(
                label,
                format!(
                    "{} takes {:?} where the chain is at {current:?}: only sequential models (each layer feeding the next, as nn.Sequential) can be read; branches and skip connections cannot",
                    node.op_type,
                    data_inputs
                ),
            ));
        }
        let constant = |index: usize| -> Option<&Tensor> {
            node.input
                .get(index)
                .filter(|n| !n.is_empty())
                .and_then(|n| constants.get(n))
        };
        let op = match node.op_type.as_str() {
            "Gemm" => {
                let (alpha, beta) = (
                    attr(node, "alpha").map_or(1.0, |a| a.f),
                    attr(node, "beta").map_or(1.0, |a| a.f),
                );
                let trans_a = attr(node, "transA").map_or(0, |a| a.i);
                let trans_b = attr(node, "transB").map_or(0, |a| a.i);
                let weight = constant(1).ok_or_else(|| {
                    OnnxError::Layout(label.clone(), "a Gemm whose weight is not a constant".into())
                })?;
                if trans_a != 0 || weight.shape.len() != 2 {
                    return Err(OnnxError::Unsupported(
                        "Gemm".into(),
                        label,
                        "only x @ W (+ b) with a 2-d constant W (transA = 0) is read, as nn.Linear exports".into(),
                    ));
                }
                let mut w = if trans_b != 0 { weight.clone() } else { transpose(weight) };
                for v in &mut w.values {
                    *v *= alpha;
                }
                let bias = match constant(2) {
                    Some(b) if b.values.len() == w.shape[0] => {
                        Some(b.values.iter().map(|v| v * beta).collect())
                    }
                    Some(b) => {
                        return Err(OnnxError::Layout(
                            label,
                            format!("a Gemm bias of shape {:?} for {} outputs", b.shape, w.shape[0]),
                        ))
                    }
                    None => None,
                };
                Op::Dense { weight: w, bias }
            }
            "MatMul" => {
                let weight = constant(1).filter(|w| w.shape.len() == 2).ok_or_else(|| {
                    OnnxError::Unsupported(
                        "MatMul".into(),
                        label.clone(),
                        "only x @ W with a 2-d constant W is read".into(),
                    )
                })?;
                Op::Dense {
                    weight: transpose(weight),
                    bias: None,
                }
            }
            "Add" => {
                // A bias after MatMul.
                let bias = constant(1).or_else(|| constant(0)).ok_or_else(|| {
                    OnnxError::Layout(label.clone(), "an Add of two computed values".into())
                })?;
                match nodes.last_mut() {
                    Some(Node {
                        op: Op::Dense { weight, bias: b @ None },
                        ..
                    }) if bias.values.len() == weight.shape[0] => {
                        *b = Some(bias.values.clone());
                        current = node.output[0].clone();
                        continue;
                    }
                    _ => {
                        return Err(OnnxError::Unsupported(
                            "Add".into(),
                            label,
                            "an addition that is not the bias of the MatMul before it".into(),
                        ))
                    }
                }
            }
            "Conv" => {
                let weight = constant(1).ok_or_else(|| {
                    OnnxError::Layout(label.clone(), "a Conv whose weight is not a constant".into())
                })?;
                if weight.shape.len() != 4 {
                    return Err(OnnxError::Unsupported(
                        "Conv".into(),
                        label,
                        format!("a {}-d convolution: only 2-d convolutions are read", weight.shape.len().saturating_sub(2)),
                    ));
                }
                Op::Conv {
                    weight: weight.clone(),
                    bias: constant(2).map(|b| b.values.clone()),
                    stride: ints2(node, "strides", [1, 1])?,
                    padding: pads(node)?,
                    dilation: ints2(node, "dilations", [1, 1])?,
                    groups: attr(node, "group").map_or(1, |a| a.i.max(0) as usize),
                }
            }
            "MaxPool" | "AveragePool" => {
                if attr(node, "ceil_mode").is_some_and(|a| a.i != 0) {
                    return Err(OnnxError::Unsupported(
                        node.op_type.clone(),
                        label,
                        "ceil_mode = 1 is not supported".into(),
                    ));
                }
                let kernel = ints2(node, "kernel_shape", [0, 0])?;
                Op::Pool {
                    max: node.op_type == "MaxPool",
                    kernel,
                    stride: ints2(node, "strides", [1, 1])?,
                    padding: pads(node)?,
                }
            }
            "Relu" => Op::Act(Act::Relu),
            "LeakyRelu" => Op::Act(Act::LeakyRelu(attr(node, "alpha").map_or(0.01, |a| a.f as f64))),
            "Elu" => Op::Act(Act::Elu(attr(node, "alpha").map_or(1.0, |a| a.f as f64))),
            "Selu" => Op::Act(Act::Selu),
            "Sigmoid" => Op::Act(Act::Sigmoid),
            "Tanh" => Op::Act(Act::Tanh),
            "Softplus" => Op::Act(Act::Softplus),
            "Gelu" => {
                let approximate = attr(node, "approximate").map(|a| String::from_utf8_lossy(&a.s).to_string());
                if approximate.as_deref().is_some_and(|a| a != "none") {
                    return Err(OnnxError::Unsupported(
                        "Gelu".into(),
                        label,
                        "the tanh approximation of GELU cannot be represented: only the exact (erf) GELU".into(),
                    ));
                }
                Op::Act(Act::Gelu)
            }
            "Flatten" => {
                if attr(node, "axis").is_some_and(|a| a.i != 1) {
                    return Err(OnnxError::Unsupported(
                        "Flatten".into(),
                        label,
                        "only a flatten from axis 1 (keeping the batch axis) is read".into(),
                    ));
                }
                Op::Flatten
            }
            "Reshape" => {
                let shape = constant(1).ok_or_else(|| {
                    OnnxError::Unsupported("Reshape".into(), label.clone(), "a reshape to a computed shape".into())
                })?;
                if shape.values.len() != 2 || shape.values[1] != -1.0 && shape.values[0] != -1.0 {
                    return Err(OnnxError::Unsupported(
                        "Reshape".into(),
                        label,
                        format!("a reshape to {:?}: only a flatten to [batch, -1] is read", shape.values),
                    ));
                }
                Op::Flatten
            }
            "Dropout" | "Identity" => Op::Dropout,
            "BatchNormalization" => {
                let get = |i: usize, what: &str| {
                    constant(i).map(|t| t.values.clone()).ok_or_else(|| {
                        OnnxError::Layout(label.clone(), format!("a BatchNormalization whose {what} is not a constant"))
                    })
                };
                Op::BatchNorm {
                    scale: get(1, "scale")?,
                    shift: get(2, "bias")?,
                    mean: get(3, "mean")?,
                    var: get(4, "variance")?,
                    epsilon: attr(node, "epsilon").map_or(1e-5, |a| a.f as f64),
                }
            }
            "Erf" => {
                return Err(OnnxError::Unsupported(
                    "Erf".into(),
                    label,
                    "an Erf that is not part of an exact GELU (x * (erf(x / sqrt 2) + 1) * 0.5)".into(),
                ))
            }
            other => {
                return Err(OnnxError::Unsupported(
                    other.into(),
                    label,
                    "read are Gemm, MatMul+Add, Conv, Relu, LeakyRelu, Elu, Selu, Gelu, Sigmoid, Tanh, Softplus, MaxPool, AveragePool, Flatten, Reshape, BatchNormalization, Dropout and Identity".into(),
                ))
            }
        };
        current =
            node.output.first().cloned().ok_or_else(|| {
                OnnxError::Layout(label.clone(), "a node without an output".into())
            })?;
        nodes.push(Node { name: label, op });
    }
    Ok(Graph {
        input: input_shape,
        nodes,
    })
}

/// The exact GELU as exporters below opset 20 write it, `x * (erf(x / sqrt 2) + 1) * 0.5`
/// (Div, Erf, Add, Mul, Mul), replaced by one `Gelu` node named after its first node.
fn fuse_gelu(nodes: Vec<NodeProto>, constants: &HashMap<String, Tensor>) -> Vec<NodeProto> {
    let scalar = |node: &NodeProto, value: f32| {
        node.input.iter().any(|i| {
            constants
                .get(i)
                .is_some_and(|t| t.values.len() == 1 && (t.values[0] - value).abs() < 1e-4)
        })
    };
    let data = |node: &NodeProto| -> Vec<String> {
        node.input
            .iter()
            .filter(|i| !i.is_empty() && !constants.contains_key(*i))
            .cloned()
            .collect()
    };
    let mut out = Vec::with_capacity(nodes.len());
    let mut i = 0;
    while i < nodes.len() {
        if let [div, erf, add, mul, half, ..] = &nodes[i..] {
            let x = data(div);
            let matches = div.op_type == "Div"
                && scalar(div, std::f32::consts::SQRT_2)
                && x.len() == 1
                && erf.op_type == "Erf"
                && data(erf) == div.output
                && add.op_type == "Add"
                && scalar(add, 1.0)
                && data(add) == erf.output
                && mul.op_type == "Mul"
                && data(mul).len() == 2
                && data(mul).contains(&x[0])
                && data(mul).contains(&add.output[0])
                && half.op_type == "Mul"
                && scalar(half, 0.5)
                && data(half) == mul.output;
            if matches {
                out.push(NodeProto {
                    input: x,
                    output: half.output.clone(),
                    name: format!("{} (GELU)", node_label(div)),
                    op_type: "Gelu".into(),
                    attribute: Vec::new(),
                    domain: String::new(),
                });
                i += 5;
                continue;
            }
        }
        out.push(nodes[i].clone());
        i += 1;
    }
    out
}

/// `[a, b]` -> `[b, a]`.
fn transpose(t: &Tensor) -> Tensor {
    let [a, b] = t.shape[..] else {
        return t.clone();
    };
    let mut values = vec![0.0; t.values.len()];
    for i in 0..a {
        for j in 0..b {
            values[j * a + i] = t.values[i * b + j];
        }
    }
    Tensor {
        shape: vec![b, a],
        values,
    }
}
