use super::*;
use nd_spec::ModelKind;
use proptest::prelude::*;

fn fixture(model: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(model)
        .join(file)
}

const FILES: [&str; 3] = ["model.onnx", "model.safetensors", "model.pt"];

#[test]
fn every_format_of_every_shipped_model_gives_the_same_architecture_and_weights() {
    for (model, kind, hidden, dense, output) in [
        (
            "digits-mlp",
            ModelKind::Mlp,
            vec![128, 128],
            vec![],
            OutputActivation::None,
        ),
        (
            "digits-mlp-dying",
            ModelKind::Mlp,
            vec![128, 128],
            vec![],
            OutputActivation::None,
        ),
        (
            "diabetes-relu-head",
            ModelKind::Mlp,
            vec![64, 64],
            vec![],
            OutputActivation::Relu,
        ),
        (
            "mnist-cnn",
            ModelKind::Cnn,
            vec![8, 16],
            vec![32],
            OutputActivation::None,
        ),
    ] {
        let options = ImportOptions {
            output_activation: Some(output),
            features: Some(if kind == ModelKind::Cnn { 784 } else { 0 }),
            ..ImportOptions::default()
        };
        let imported: Vec<Imported> = FILES
            .iter()
            .map(|f| import(&fixture(model, f), &options).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        for i in &imported {
            let m = i.model();
            assert_eq!(
                (m.kind, &m.hidden, &m.dense),
                (kind, &hidden, &dense),
                "{}",
                i.path.display()
            );
            assert_eq!(m.activation, Activation::Relu);
            assert_eq!(m.output_activation, output, "{}", i.path.display());
            assert_eq!(i.sha256.len(), 64);
        }
        // The ONNX graph says the input shape; the weights-only files get it from the data.
        assert_eq!(imported[0].lowered.inputs, imported[1].lowered.inputs);
        assert_eq!(imported[0].lowered.image, imported[2].lowered.image);
        for other in &imported[1..] {
            assert_eq!(other.lowered.layers.len(), imported[0].lowered.layers.len());
            for (a, b) in imported[0].lowered.layers.iter().zip(&other.lowered.layers) {
                assert_eq!((a.fan_in, a.units), (b.fan_in, b.units));
                assert_eq!(a.weight, b.weight, "{} {}", other.path.display(), b.source);
                assert_eq!(a.bias, b.bias);
            }
        }
    }
}

#[test]
fn onnx_node_names_are_the_exporters() {
    let i = import(
        &fixture("mnist-cnn", "model.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(i.lowered.image, Some([1, 28, 28]));
    assert_eq!(i.lowered.inputs, 784);
    assert_eq!(i.lowered.outputs, 10);
    assert!(
        i.lowered.layers[0].source.contains("Conv"),
        "{:?}",
        i.lowered.layers[0].source
    );
}

fn copy_to_temp(model: &str, file: &str) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    let bytes = std::fs::read(fixture(model, file)).unwrap();
    (dir, path, bytes)
}

#[test]
fn truncated_and_damaged_files_are_errors_naming_the_file() {
    for file in FILES {
        let (_dir, path, bytes) = copy_to_temp("digits-mlp", file);
        for cut in [0, 10, bytes.len() / 3, bytes.len() - 7] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = import(&path, &ImportOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}

#[test]
fn a_pickled_module_is_told_apart_from_a_state_dict() {
    let (_dir, path, mut bytes) = copy_to_temp("digits-mlp", "model.pt");
    // What torch.save(model) writes names the module classes in data.pkl.
    bytes.extend_from_slice(b"ctorch.nn.modules.container\nSequential\n");
    std::fs::write(&path, &bytes).unwrap();
    let e = import(&path, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, ImportError::PickledModule { .. }), "{e}");
    assert!(e.to_string().contains("state_dict()"), "{e}");
}

#[test]
fn unknown_extensions_and_missing_files_are_errors() {
    let e = import(Path::new("model.h5"), &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, ImportError::UnknownFormat { .. }), "{e}");
    let e = import(
        Path::new("/nonexistent/model.onnx"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/model.onnx: cannot read"),
        "{e}"
    );
}

/// An ONNX model from parts: input [batch, 4], then the nodes.
fn onnx_model(nodes: Vec<onnx::NodeProto>, initializers: Vec<onnx::TensorProto>) -> Vec<u8> {
    onnx_model_with_input(&[4], nodes, initializers)
}

/// An ONNX model from parts with one example's input shape.
fn onnx_model_with_input(
    input: &[i64],
    nodes: Vec<onnx::NodeProto>,
    initializers: Vec<onnx::TensorProto>,
) -> Vec<u8> {
    use prost::Message;
    let dim = |v: Option<i64>| onnx::DimensionProto {
        dim_value: v,
        dim_param: v.is_none().then(|| "batch".to_string()),
    };
    let model = onnx::ModelProto {
        ir_version: 8,
        producer_name: "test".into(),
        producer_version: String::new(),
        opset_import: vec![onnx::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(onnx::GraphProto {
            node: nodes,
            initializer: initializers,
            input: vec![onnx::ValueInfoProto {
                name: "input".into(),
                r#type: Some(onnx::TypeProto {
                    tensor_type: Some(onnx::TensorTypeProto {
                        elem_type: 1,
                        shape: Some(onnx::TensorShapeProto {
                            dim: std::iter::once(dim(None))
                                .chain(input.iter().map(|&d| dim(Some(d))))
                                .collect(),
                        }),
                    }),
                }),
            }],
            output: Vec::new(),
        }),
    };
    model.encode_to_vec()
}

/// A node; a Gemm gets `transB = 1`, as `torch.onnx.export` writes `nn.Linear`.
fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> onnx::NodeProto {
    let attribute = if op == "Gemm" {
        vec![onnx::AttributeProto {
            name: "transB".into(),
            i: 1,
            ..Default::default()
        }]
    } else {
        Vec::new()
    };
    onnx::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        attribute,
        domain: String::new(),
    }
}

fn weight(name: &str, dims: &[i64]) -> onnx::TensorProto {
    let n: i64 = dims.iter().product();
    onnx::TensorProto {
        dims: dims.to_vec(),
        data_type: 1,
        float_data: (0..n).map(|i| i as f32 * 0.1).collect(),
        name: name.into(),
        ..Default::default()
    }
}

fn write_onnx(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn matmul_add_is_a_linear_layer_and_an_unsupported_operator_is_named() {
    let w = |n: &str, d: &[i64]| weight(n, d);
    let ok = onnx_model(
        vec![
            node("MatMul", "/0/MatMul", &["input", "w0"], "a"),
            node("Add", "/0/Add", &["a", "b0"], "b"),
            node("Tanh", "/1/Tanh", &["b"], "c"),
            node("Gemm", "/2/Gemm", &["c", "w2", "b2"], "out"),
        ],
        vec![
            w("w0", &[4, 5]),
            w("b0", &[5]),
            w("w2", &[3, 5]),
            w("b2", &[3]),
        ],
    );
    let (_d, path) = write_onnx(&ok);
    let i = import(&path, &ImportOptions::default()).unwrap();
    assert_eq!(i.model().hidden, vec![5]);
    assert_eq!(i.model().activation, Activation::Tanh);
    assert_eq!((i.lowered.inputs, i.lowered.outputs), (4, 3));
    // MatMul's W is [in, out]: the layer's [fan_in, units] matrix is W itself.
    assert_eq!(i.lowered.layers[0].weight, w("w0", &[4, 5]).float_data);
    assert_eq!(i.lowered.layers[0].bias, w("b0", &[5]).float_data);

    let bad = onnx_model(
        vec![
            node("Gemm", "/0/Gemm", &["input", "w0", "b0"], "a"),
            node("Softmax", "/1/Softmax", &["a"], "out"),
        ],
        vec![w("w0", &[5, 4]), w("b0", &[5])],
    );
    let (_d, path) = write_onnx(&bad);
    let e = import(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unsupported operator Softmax at node \"/1/Softmax\""),
        "{e}"
    );

    let branch = onnx_model(
        vec![
            node("Gemm", "/0/Gemm", &["input", "w0", "b0"], "a"),
            node("Relu", "/1/Relu", &["a"], "b"),
            node("Add", "/skip/Add", &["b", "a"], "out"),
        ],
        vec![w("w0", &[4, 4]), w("b0", &[4])],
    );
    let (_d, path) = write_onnx(&branch);
    let e = import(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/skip/Add") && e.contains("skip connections"),
        "{e}"
    );
}

#[test]
fn a_batch_norm_is_folded_into_the_layer_before_it() {
    let mut scale = weight("s", &[5]);
    scale.float_data = vec![2.0; 5];
    let mut var = weight("v", &[5]);
    var.float_data = vec![3.0; 5];
    let bytes = onnx_model(
        vec![
            node("Gemm", "fc", &["input", "w0", "b0"], "a"),
            node("BatchNormalization", "bn", &["a", "s", "sh", "m", "v"], "b"),
            node("Relu", "act", &["b"], "c"),
            node("Gemm", "out", &["c", "w2", "b2"], "d"),
        ],
        vec![
            weight("w0", &[5, 4]),
            weight("b0", &[5]),
            scale,
            weight("sh", &[5]),
            weight("m", &[5]),
            var,
            weight("w2", &[2, 5]),
            weight("b2", &[2]),
        ],
    );
    let (_d, path) = write_onnx(&bytes);
    let i = import(&path, &ImportOptions::default()).unwrap();
    assert_eq!(i.lowered.folded_batch_norms, vec!["bn".to_string()]);
    let k = 2.0 / (3.0f64 + 1e-5).sqrt();
    // Unit 1: bias (0.1 - mean 0.1) * k + shift 0.1.
    assert!((i.lowered.layers[0].bias[1] as f64 - 0.1).abs() < 1e-6);
    // Weight [out 1, in 2] = 0.6, scaled; stored [fan_in, units] at [2, 1].
    assert!((i.lowered.layers[0].weight[2 * 5 + 1] as f64 - 0.6 * k).abs() < 1e-5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary bytes, and a real file with bytes flipped, are errors (or a model), never a
    /// panic or a hang.
    #[test]
    fn the_readers_survive_damaged_input(flips in proptest::collection::vec((0usize..120_000, any::<u8>()), 1..8),
                                          format in 0usize..2, noise in proptest::collection::vec(any::<u8>(), 0..256)) {
        let file = ["model.onnx", "model.safetensors"][format];
        let (_dir, path, mut bytes) = copy_to_temp("digits-mlp", file);
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        std::fs::write(&path, &bytes).unwrap();
        let _ = import(&path, &ImportOptions::default());
        std::fs::write(&path, &noise).unwrap();
        prop_assert!(import(&path, &ImportOptions::default()).is_err());
    }
}

/// What PyTorch measured with forward hooks on the same data (`reference.json`).
struct Reference(serde_json::Value);

impl Reference {
    fn of(model: &str) -> Reference {
        let text = std::fs::read_to_string(fixture(model, "reference.json")).unwrap();
        Reference(serde_json::from_str(&text).unwrap())
    }
    fn metric(&self, key: &str) -> Option<f64> {
        self.0["metrics"][key].as_f64()
    }
    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }
}

/// `|ours - theirs| <= 1e-4 + 1e-4 |theirs|`.
fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-4 + 1e-4 * theirs.abs()
}

/// Every shipped model in every format, on its own data, against PyTorch's own numbers:
/// accuracy exactly (MSE within 1e-4 relative), the first five rows' outputs and every unit's
/// largest pre-activation within 1e-4, and the dead units counted alike.
#[test]
fn imported_models_compute_what_pytorch_measured() {
    use burn::tensor::{Tensor as T, TensorData as D};
    use nd_spec::{DataSpec, Task, TrainSpec};
    let device = nd_train::device(nd_spec::Backend::Flex).unwrap();
    for model in [
        "digits-mlp",
        "digits-mlp-dying",
        "diabetes-relu-head",
        "mnist-cnn",
    ] {
        let reference = Reference::of(model);
        let classification = reference.0["task"] == "classification";
        for file in FILES {
            let label = format!("{model}/{file}");
            let output_activation = if model == "diabetes-relu-head" {
                OutputActivation::Relu
            } else {
                OutputActivation::None
            };
            let imported = import(
                &fixture(model, file),
                &ImportOptions {
                    output_activation: Some(output_activation),
                    features: Some(
                        reference.0["input_shape"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| d.as_u64().unwrap() as usize)
                            .product(),
                    ),
                    ..ImportOptions::default()
                },
            )
            .unwrap();
            let data = DataSpec::imported(
                fixture(model, "data.csv.gz"),
                if classification { "label" } else { "target" },
                if classification {
                    Task::Classification
                } else {
                    Task::Regression
                },
                Some(imported.lowered.outputs),
            );
            let spec = imported
                .spec(model, data, None, TrainSpec::default(), Default::default())
                .unwrap()
                .check()
                .unwrap();
            let data = nd_data::load(&spec.data, Path::new(".")).unwrap();
            assert_eq!(
                data.train.rows as u64,
                reference.0["train_rows"].as_u64().unwrap(),
                "{label}"
            );
            assert_eq!(
                data.test.rows as u64,
                reference.0["test_rows"].as_u64().unwrap(),
                "{label}"
            );
            let network = imported.network(&spec, &device).unwrap();
            let m = nd_train::measure(&network, &data, &device);
            if classification {
                for (ours, key) in [
                    (m.train_accuracy, "train_accuracy"),
                    (m.test_accuracy, "test_accuracy"),
                ] {
                    let theirs = reference.metric(key).unwrap();
                    assert!(
                        (ours.unwrap() - theirs).abs() < 1e-6,
                        "{label} {key}: {ours:?} vs {theirs}"
                    );
                }
            } else {
                for (ours, key) in [
                    (m.train_loss, "train_mse"),
                    (m.test_mse.unwrap(), "test_mse"),
                ] {
                    let theirs = reference.metric(key).unwrap();
                    assert!(
                        (ours - theirs).abs() <= 1e-4 * theirs,
                        "{label} {key}: {ours} vs {theirs}"
                    );
                }
            }
            // The first five rows (all training rows, in file order).
            let width = data.n_features;
            let rows = D::new(data.train.features[..5 * width].to_vec(), [5, width]);
            let out = network.forward(T::<2>::from_data(rows, &device));
            let out: Vec<f32> = out.into_data().try_to_vec().unwrap();
            let expected: Vec<f64> = reference.0["first5_outputs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(Reference::floats)
                .collect();
            assert_eq!(out.len(), expected.len(), "{label}");
            for (i, (&o, &e)) in out.iter().zip(&expected).enumerate() {
                assert!(close(o as f64, e), "{label} output {i}: {o} vs {e}");
            }
            // Every activation site. make_models.py's hooks stay registered while it measures
            // the metrics, so its per-unit numbers cover every row, train and test (its README
            // says "every train row"; its code says otherwise): probe all rows alike.
            let all = nd_data::Split {
                rows: data.train.rows + data.test.rows,
                features: [data.train.features.clone(), data.test.features.clone()].concat(),
                targets: match (&data.train.targets, &data.test.targets) {
                    (nd_data::Targets::Classes(a), nd_data::Targets::Classes(b)) => {
                        nd_data::Targets::Classes([a.clone(), b.clone()].concat())
                    }
                    (nd_data::Targets::Values(a), nd_data::Targets::Values(b)) => {
                        nd_data::Targets::Values([a.clone(), b.clone()].concat())
                    }
                    _ => unreachable!("one task"),
                },
            };
            let probe =
                nd_probe::probe(&network, &all, &device, &nd_probe::ProbeOptions::default());
            let sites = reference.0["sites"].as_array().unwrap();
            for (k, site) in sites.iter().enumerate() {
                let pre_max = Reference::floats(&site["pre_max"]);
                let dead = site["dead"].as_u64().unwrap() as usize;
                match probe.sites.get(k) {
                    Some(ours) => {
                        assert_eq!(ours.units, pre_max.len(), "{label} site {k}");
                        for (u, (&a, &b)) in ours.pre_max.iter().zip(&pre_max).enumerate() {
                            assert!(close(a, b), "{label} site {k} unit {u}: pre_max {a} vs {b}");
                        }
                        assert_eq!(ours.dead_units().len(), dead, "{label} site {k} dead units");
                    }
                    None => {
                        // The ReLU on the output: its largest value is its largest input.
                        assert_eq!(k, probe.sites.len(), "{label}");
                        assert_eq!(pre_max.len(), 1);
                        assert!(
                            close(probe.output.max, pre_max[0]),
                            "{label} output: {} vs {}",
                            probe.output.max,
                            pre_max[0]
                        );
                        assert_eq!(usize::from(probe.output.max <= 0.0), dead);
                    }
                }
            }
        }
    }
}

fn scalar(name: &str, value: f32) -> onnx::TensorProto {
    onnx::TensorProto {
        data_type: 1,
        float_data: vec![value],
        name: name.into(),
        ..Default::default()
    }
}

fn with_ints(mut node: onnx::NodeProto, name: &str, ints: &[i64]) -> onnx::NodeProto {
    node.attribute.push(onnx::AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        ..Default::default()
    });
    node
}

#[test]
fn gelu_split_into_erf_nodes_is_read_as_one_gelu() {
    // What torch.onnx.export writes for nn.GELU() at opset 17.
    let bytes = onnx_model(
        vec![
            node("Gemm", "/0/Gemm", &["input", "w0", "b0"], "a"),
            node("Div", "/1/Div", &["a", "sqrt2"], "b"),
            node("Erf", "/1/Erf", &["b"], "c"),
            node("Add", "/1/Add", &["c", "one"], "d"),
            node("Mul", "/1/Mul", &["a", "d"], "e"),
            node("Mul", "/1/Mul_1", &["e", "half"], "f"),
            node("Gemm", "/2/Gemm", &["f", "w2", "b2"], "out"),
        ],
        vec![
            weight("w0", &[5, 4]),
            weight("b0", &[5]),
            scalar("sqrt2", std::f32::consts::SQRT_2),
            scalar("one", 1.0),
            scalar("half", 0.5),
            weight("w2", &[3, 5]),
            weight("b2", &[3]),
        ],
    );
    let (_d, path) = write_onnx(&bytes);
    let i = import(&path, &ImportOptions::default()).unwrap();
    assert_eq!(i.model().activation, Activation::Gelu);
    assert_eq!(i.model().hidden, vec![5]);
    // An Erf on its own is still refused, by name.
    let bytes = onnx_model(
        vec![
            node("Gemm", "/0/Gemm", &["input", "w0", "b0"], "a"),
            node("Erf", "/1/Erf", &["a"], "b"),
            node("Gemm", "/2/Gemm", &["b", "w2", "b2"], "out"),
        ],
        vec![
            weight("w0", &[5, 4]),
            weight("b0", &[5]),
            weight("w2", &[3, 5]),
            weight("b2", &[3]),
        ],
    );
    let (_d, path) = write_onnx(&bytes);
    let e = import(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unsupported operator Erf at node \"/1/Erf\""),
        "{e}"
    );
}

#[test]
fn average_pooling_after_each_convolution_is_a_cnn_with_pool_avg() {
    let conv = with_ints(
        with_ints(
            node("Conv", "/0/Conv", &["input", "cw", "cb"], "a"),
            "pads",
            &[1, 1, 1, 1],
        ),
        "kernel_shape",
        &[3, 3],
    );
    let pool = with_ints(
        with_ints(
            node("AveragePool", "/2/AveragePool", &["b"], "c"),
            "kernel_shape",
            &[2, 2],
        ),
        "strides",
        &[2, 2],
    );
    let bytes = onnx_model_with_input(
        &[1, 4, 4],
        vec![
            conv,
            node("Relu", "/1/Relu", &["a"], "b"),
            pool,
            node("Flatten", "/3/Flatten", &["c"], "d"),
            node("Gemm", "/4/Gemm", &["d", "w", "bias"], "out"),
        ],
        vec![
            weight("cw", &[2, 1, 3, 3]),
            weight("cb", &[2]),
            weight("w", &[3, 8]),
            weight("bias", &[3]),
        ],
    );
    let (_d, path) = write_onnx(&bytes);
    let i = import(&path, &ImportOptions::default()).unwrap();
    assert_eq!(i.model().kind, ModelKind::Cnn);
    assert_eq!(i.model().pool, nd_spec::Pool::Avg);
    assert_eq!(i.lowered.image, Some([1, 4, 4]));
    // A stride-2 convolution is not something the spec can say: the node is named.
    let strided = with_ints(
        with_ints(
            with_ints(
                node("Conv", "/0/Conv", &["input", "cw", "cb"], "a"),
                "pads",
                &[1, 1, 1, 1],
            ),
            "kernel_shape",
            &[3, 3],
        ),
        "strides",
        &[2, 2],
    );
    let bytes = onnx_model_with_input(
        &[1, 4, 4],
        vec![strided, node("Relu", "/1/Relu", &["a"], "b")],
        vec![weight("cw", &[2, 1, 3, 3]), weight("cb", &[2])],
    );
    let (_d, path) = write_onnx(&bytes);
    let e = import(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("stride [2, 2]") && e.contains("/0/Conv"), "{e}");
}

/// A SafeTensors file written by hand: the 8-byte header length, the JSON header, the data.
fn safetensors_file(tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut header = Vec::new();
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let start = data.len();
        for i in 0..n {
            data.extend_from_slice(&(i as f32 * 0.01).to_le_bytes());
        }
        header.push(format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
            data.len()
        ));
    }
    let header = format!("{{{}}}", header.join(","));
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

#[test]
fn named_layers_need_their_order_and_follow_it_when_given() {
    // A module with attributes fc1, fc2, head: nothing in the names says which comes first
    // ("head" sorts before "fc2" only by luck of the alphabet).
    let bytes = safetensors_file(&[
        ("head.weight", vec![3, 4]),
        ("head.bias", vec![3]),
        ("fc1.weight", vec![5, 6]),
        ("fc1.bias", vec![5]),
        ("fc2.weight", vec![4, 5]),
        ("fc2.bias", vec![4]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("named.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let e = import(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("[source] layers = [\""), "{e}");
    let ordered = ImportOptions {
        layer_order: vec!["fc1".into(), "fc2".into(), "head".into()],
        ..ImportOptions::default()
    };
    let i = import(&path, &ordered).unwrap();
    assert_eq!(i.model().hidden, vec![5, 4]);
    assert_eq!((i.lowered.inputs, i.lowered.outputs), (6, 3));
    // A list that misses a module, or names one the file lacks, is refused by name.
    let short = ImportOptions {
        layer_order: vec!["fc1".into(), "head".into()],
        ..ImportOptions::default()
    };
    let e = import(&path, &short).unwrap_err().to_string();
    assert!(e.contains("\"fc2\""), "{e}");
    let extra = ImportOptions {
        layer_order: vec!["fc1".into(), "fc2".into(), "head".into(), "fc3".into()],
        ..ImportOptions::default()
    };
    let e = import(&path, &extra).unwrap_err().to_string();
    assert!(e.contains("\"fc3\""), "{e}");
}
