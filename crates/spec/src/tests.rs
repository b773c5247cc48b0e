//! Tests of the spec: defaults, parsing, validation, error messages, round trips and remedies.

use super::*;
use proptest::prelude::*;
use std::f64::consts::SQRT_2;

/// The smallest spec there is: the two required keys.
const MINIMAL: &str = r#"
[data]
dataset = "digits"
[model]
hidden = [32]
"#;

/// The example spec from the project README, every common key spelled out.
const EXAMPLE: &str = r#"name = "digits-relu"
[data]
dataset = "digits"
standardize = true
target_scale = "none"
limit = 0
[model]
kind = "mlp"
hidden = [128, 128]
activation = "relu"
leaky_slope = 0.01
init = "kaiming_uniform"
bias_init = 0.0
output_activation = "none"
batch_norm = false
dropout = 0.0
[train]
optimizer = "adam"
learning_rate = 0.001
momentum = 0.0
epochs = 20
batch_size = 64
seed = 42
backend = "flex"
"#;

/// A csv spec with every optional key set and no value left at its default.
const FULL_CSV: &str = r#"name = "house.prices"
[data]
dataset = "csv"
path = "data/houses.csv.gz"
target = "price"
task = "regression"
standardize = false
target_scale = "standardize"
limit = 500
samples = 200
noise = 0.5
image = [1, 4, 4]
holdout = "none"
classes = 3
[model]
kind = "cnn"
hidden = [8, 16]
dense = [32]
kernel_size = 5
activation = "leaky_relu"
leaky_slope = 0.2
init = "normal"
init_std = 0.02
init_range = 0.1
bias_init = 0.01
output_activation = "softplus"
batch_norm = true
dropout = 0.25
[train]
optimizer = "sgd"
learning_rate = 0.05
momentum = 0.9
weight_decay = 0.0001
epochs = 7
batch_size = 16
seed = 7
backend = "wgpu"
[doctor]
dead_fraction_warning = 0.2
dead_fraction_error = 0.6
dormant_tau = 0.1
saturated_fraction_warning = 0.3
saturated_fraction_error = 0.7
vanishing_ratio = 0.0001
exploding_ratio = 10000.0
init_scale_tolerance = 2.5
stall_epochs = 3
stall_min_improvement = 0.001
"#;

fn parse(text: &str) -> Spec {
    Spec::from_toml_str(text, "test").unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

fn minimal() -> Spec {
    parse(MINIMAL)
}

/// The parse error's line, column and message; fails the test on any other outcome.
fn parse_error(text: &str) -> (usize, usize, String) {
    match Spec::from_toml_str(text, "test") {
        Err(SpecError::Parse {
            file: None,
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a parse error for\n{text}\ngot {other:?}"),
    }
}

/// Every error is one line that names its key (when it has one) and, when invalid, the value
/// and what is allowed.
fn assert_well_formed(err: &SpecError) {
    let shown = err.to_string();
    assert!(!shown.contains('\n'), "not one line: {shown:?}");
    if let Some(key) = err.key() {
        assert!(
            shown.contains(&format!("`{key}`")),
            "{shown:?} does not name `{key}`"
        );
    }
    if let SpecError::Invalid { value, allowed, .. } = err {
        assert!(
            shown.contains(value.as_str()),
            "{shown:?} does not show {value:?}"
        );
        assert!(
            shown.contains(allowed.as_str()),
            "{shown:?} does not show {allowed:?}"
        );
    }
}

#[test]
fn minimal_spec_gets_every_documented_default() {
    let expected = Spec {
        name: "test".into(),
        data: DataSpec {
            dataset: DatasetName::Digits,
            path: None,
            target: None,
            task: None,
            standardize: true,
            target_scale: TargetScale::None,
            limit: 0,
            samples: 1000,
            noise: 0.1,
            image: None,
            holdout: Holdout::Rule,
            classes: None,
        },
        model: ModelSpec {
            kind: ModelKind::Mlp,
            hidden: vec![32],
            dense: vec![],
            kernel_size: 3,
            pool: Pool::Max,
            activation: Activation::Relu,
            leaky_slope: 0.01,
            init: Init::KaimingUniform,
            init_std: 0.01,
            init_range: 0.05,
            bias_init: 0.0,
            output_activation: OutputActivation::None,
            batch_norm: false,
            dropout: 0.0,
        },
        train: TrainSpec {
            optimizer: Optimizer::Adam,
            learning_rate: 0.001,
            momentum: 0.0,
            weight_decay: 0.0,
            epochs: 20,
            batch_size: 64,
            seed: 42,
            backend: Backend::Flex,
        },
        doctor: DoctorThresholds {
            dead_fraction_warning: 0.10,
            dead_fraction_error: 0.50,
            dormant_tau: 0.025,
            saturated_fraction_warning: 0.25,
            saturated_fraction_error: 0.50,
            vanishing_ratio: 1e-3,
            exploding_ratio: 1e3,
            init_scale_tolerance: 3.0,
            stall_epochs: 5,
            stall_min_improvement: 0.01,
        },
        executor: Default::default(),
        source: None,
    };
    assert_eq!(minimal(), expected);
    minimal().check().expect("the defaults are valid");
}

#[test]
fn an_empty_section_is_the_same_as_no_section() {
    let with_empty = parse(&format!("{MINIMAL}[train]\n[doctor]\n"));
    assert_eq!(with_empty, minimal());
}

#[test]
fn example_spec_parses_exactly() {
    let spec = parse(EXAMPLE);
    let mut expected = minimal();
    expected.name = "digits-relu".into();
    expected.model.hidden = vec![128, 128];
    assert_eq!(spec, expected);
    let checked = spec.check().expect("the example is valid");
    assert_eq!(checked.name, "digits-relu");
}

#[test]
fn full_csv_spec_parses_every_key() {
    let spec = parse(FULL_CSV);
    assert_eq!(spec.name, "house.prices");
    assert_eq!(spec.data.dataset, DatasetName::Csv);
    assert_eq!(
        spec.data.path.as_deref(),
        Some(Path::new("data/houses.csv.gz"))
    );
    assert_eq!(spec.data.target.as_deref(), Some("price"));
    assert_eq!(spec.data.task, Some(Task::Regression));
    assert!(!spec.data.standardize);
    assert_eq!(spec.data.target_scale, TargetScale::Standardize);
    assert_eq!((spec.data.limit, spec.data.samples), (500, 200));
    assert_eq!(spec.data.noise, 0.5);
    assert_eq!(spec.model.kind, ModelKind::Cnn);
    assert_eq!(
        (spec.model.hidden.clone(), spec.model.dense.clone()),
        (vec![8, 16], vec![32])
    );
    assert_eq!(spec.model.kernel_size, 5);
    assert_eq!(spec.model.activation, Activation::LeakyRelu);
    assert_eq!(spec.model.leaky_slope, 0.2);
    assert_eq!(spec.model.init, Init::Normal);
    assert_eq!((spec.model.init_std, spec.model.init_range), (0.02, 0.1));
    assert_eq!(spec.model.bias_init, 0.01);
    assert_eq!(spec.model.output_activation, OutputActivation::Softplus);
    assert!(spec.model.batch_norm);
    assert_eq!(spec.model.dropout, 0.25);
    assert_eq!(spec.train.optimizer, Optimizer::Sgd);
    assert_eq!(spec.train.learning_rate, 0.05);
    assert_eq!(spec.train.momentum, 0.9);
    assert_eq!(spec.train.weight_decay, 0.0001);
    assert_eq!(
        (spec.train.epochs, spec.train.batch_size, spec.train.seed),
        (7, 16, 7)
    );
    assert_eq!(spec.train.backend, Backend::Wgpu);
    let d = &spec.doctor;
    assert_eq!((d.dead_fraction_warning, d.dead_fraction_error), (0.2, 0.6));
    assert_eq!(d.dormant_tau, 0.1);
    assert_eq!(
        (d.saturated_fraction_warning, d.saturated_fraction_error),
        (0.3, 0.7)
    );
    assert_eq!((d.vanishing_ratio, d.exploding_ratio), (1e-4, 1e4));
    assert_eq!(d.init_scale_tolerance, 2.5);
    assert_eq!((d.stall_epochs, d.stall_min_improvement), (3, 0.001));
    spec.check().expect("the full csv spec is valid");
}

#[test]
fn integers_are_accepted_where_numbers_are_expected() {
    let spec = parse(&format!(
        "{MINIMAL}dropout = 0\n[train]\nlearning_rate = 1\n"
    ));
    assert_eq!((spec.model.dropout, spec.train.learning_rate), (0.0, 1.0));
}

#[test]
fn name_defaults_to_the_file_stem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits-relu.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    assert_eq!(Spec::from_file(&path).unwrap().name, "digits-relu");

    // An explicit name wins; an empty one counts as none.
    std::fs::write(&path, format!("name = \"mine\"\n{MINIMAL}")).unwrap();
    assert_eq!(Spec::from_file(&path).unwrap().name, "mine");
    std::fs::write(&path, format!("name = \"\"\n{MINIMAL}")).unwrap();
    assert_eq!(Spec::from_file(&path).unwrap().name, "digits-relu");

    assert_eq!(Spec::from_toml_str(MINIMAL, "given").unwrap().name, "given");
}

#[test]
fn file_errors_name_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\nactivation = \"relux\"\n",
    )
    .unwrap();
    let err = Spec::from_file(&path).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}:5:14: `model.activation`: ", path.display())),
        "{shown}"
    );
    assert!(
        shown.contains("`relux`") && shown.contains("`leaky_relu`"),
        "{shown}"
    );
    assert_well_formed(&err);

    let missing = dir.path().join("absent.toml");
    let err = Spec::from_file(&missing).unwrap_err();
    assert!(matches!(err, SpecError::Read { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read spec: ", missing.display())),
        "{shown}"
    );
    assert_well_formed(&err);

    // A check error gets the file attached by the caller.
    std::fs::write(&path, format!("{MINIMAL}dropout = 1.0\n")).unwrap();
    let err = Spec::from_file(&path)
        .unwrap()
        .check()
        .unwrap_err()
        .in_file(&path);
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: `model.dropout` = 1 ", path.display())),
        "{shown}"
    );
    assert_eq!(err.key(), Some("model.dropout"));
}

/// A change to the minimal spec and the key whose rule it breaks (`None`: still valid).
type Row = (&'static str, fn(&mut Spec), Option<&'static str>);

fn csv(spec: &mut Spec) {
    spec.data.dataset = DatasetName::Csv;
    spec.data.path = Some("x.csv".into());
    spec.data.target = Some("y".into());
}

// One row a line reads as a table; rustfmt would spread each over five.
#[rustfmt::skip]
const CHECK_ROWS: &[Row] = &[
    ("plain name", |s| s.name = "run-1_a.b".into(), None),
    ("empty name", |s| s.name = String::new(), Some("name")),
    ("name with a space", |s| s.name = "my run".into(), Some("name")),
    ("name with a slash", |s| s.name = "a/b".into(), Some("name")),
    ("name `..`", |s| s.name = "..".into(), Some("name")),
    ("csv with path and target", csv, None),
    ("csv with a task", |s| { csv(s); s.data.task = Some(Task::Regression) }, None),
    ("csv without path", |s| { csv(s); s.data.path = None }, Some("data.path")),
    ("csv without target", |s| { csv(s); s.data.target = None }, Some("data.target")),
    ("path with a builtin dataset", |s| s.data.path = Some("x.csv".into()), Some("data.path")),
    ("target with a builtin dataset", |s| s.data.target = Some("y".into()), Some("data.target")),
    ("task with a builtin dataset", |s| s.data.task = Some(Task::Regression), Some("data.task")),
    ("limit at TOML's largest integer", |s| s.data.limit = i64::MAX as usize, None),
    ("limit past TOML's integers", |s| s.data.limit = i64::MAX as usize + 1, Some("data.limit")),
    ("samples 10", |s| s.data.samples = 10, None),
    ("samples 9", |s| s.data.samples = 9, Some("data.samples")),
    ("noise 0", |s| s.data.noise = 0.0, None),
    ("noise below 0", |s| s.data.noise = -0.1, Some("data.noise")),
    ("noise infinite", |s| s.data.noise = f64::INFINITY, Some("data.noise")),
    ("noise NaN", |s| s.data.noise = f64::NAN, Some("data.noise")),
    ("mlp without hidden layers", |s| s.model.hidden = vec![], None),
    ("cnn without conv layers", |s| { s.model.kind = ModelKind::Cnn; s.model.hidden = vec![] }, Some("model.hidden")),
    ("hidden [0]", |s| s.model.hidden = vec![0], Some("model.hidden")),
    ("hidden [8, 0]", |s| s.model.hidden = vec![8, 0], Some("model.hidden")),
    ("hidden 65536 wide", |s| s.model.hidden = vec![65_536], None),
    ("hidden 65537 wide", |s| s.model.hidden = vec![65_537], Some("model.hidden")),
    ("dense with a cnn", |s| { s.model.kind = ModelKind::Cnn; s.model.dense = vec![16] }, None),
    ("dense [0] with a cnn", |s| { s.model.kind = ModelKind::Cnn; s.model.dense = vec![0] }, Some("model.dense")),
    ("dense with an mlp", |s| s.model.dense = vec![16], Some("model.dense")),
    ("kernel 1", |s| s.model.kernel_size = 1, None),
    ("kernel 9", |s| s.model.kernel_size = 9, None),
    ("kernel 0", |s| s.model.kernel_size = 0, Some("model.kernel_size")),
    ("even kernel", |s| s.model.kernel_size = 4, Some("model.kernel_size")),
    ("kernel 11", |s| s.model.kernel_size = 11, Some("model.kernel_size")),
    ("leaky slope 0", |s| s.model.leaky_slope = 0.0, None),
    ("leaky slope 0.99", |s| s.model.leaky_slope = 0.99, None),
    ("leaky slope 1", |s| s.model.leaky_slope = 1.0, Some("model.leaky_slope")),
    ("leaky slope below 0", |s| s.model.leaky_slope = -0.01, Some("model.leaky_slope")),
    ("init std 0", |s| s.model.init_std = 0.0, Some("model.init_std")),
    ("init std NaN", |s| s.model.init_std = f64::NAN, Some("model.init_std")),
    ("init range 0", |s| s.model.init_range = 0.0, Some("model.init_range")),
    ("init range infinite", |s| s.model.init_range = f64::INFINITY, Some("model.init_range")),
    ("negative bias init", |s| s.model.bias_init = -1.0, None),
    ("infinite bias init", |s| s.model.bias_init = f64::INFINITY, Some("model.bias_init")),
    ("dropout 0.99", |s| s.model.dropout = 0.99, None),
    ("dropout 1", |s| s.model.dropout = 1.0, Some("model.dropout")),
    ("dropout below 0", |s| s.model.dropout = -0.1, Some("model.dropout")),
    ("learning rate 1e-9", |s| s.train.learning_rate = 1e-9, None),
    ("learning rate 0", |s| s.train.learning_rate = 0.0, Some("train.learning_rate")),
    ("learning rate below 0", |s| s.train.learning_rate = -0.1, Some("train.learning_rate")),
    ("learning rate infinite", |s| s.train.learning_rate = f64::INFINITY, Some("train.learning_rate")),
    ("momentum with sgd", |s| { s.train.optimizer = Optimizer::Sgd; s.train.momentum = 0.9 }, None),
    ("momentum with adam", |s| s.train.momentum = 0.9, Some("train.momentum")),
    ("momentum 1", |s| { s.train.optimizer = Optimizer::Sgd; s.train.momentum = 1.0 }, Some("train.momentum")),
    ("momentum below 0", |s| { s.train.optimizer = Optimizer::Sgd; s.train.momentum = -0.1 }, Some("train.momentum")),
    ("weight decay", |s| s.train.weight_decay = 0.1, None),
    ("weight decay below 0", |s| s.train.weight_decay = -0.1, Some("train.weight_decay")),
    ("weight decay NaN", |s| s.train.weight_decay = f64::NAN, Some("train.weight_decay")),
    ("epochs 1", |s| s.train.epochs = 1, None),
    ("epochs 100000", |s| s.train.epochs = 100_000, None),
    ("epochs 0", |s| s.train.epochs = 0, Some("train.epochs")),
    ("epochs 100001", |s| s.train.epochs = 100_001, Some("train.epochs")),
    ("batch 1", |s| s.train.batch_size = 1, None),
    ("batch 2^20", |s| s.train.batch_size = 1 << 20, None),
    ("batch 0", |s| s.train.batch_size = 0, Some("train.batch_size")),
    ("batch past 2^20", |s| s.train.batch_size = (1 << 20) + 1, Some("train.batch_size")),
    ("seed at TOML's largest integer", |s| s.train.seed = i64::MAX as u64, None),
    ("seed past TOML's integers", |s| s.train.seed = u64::MAX, Some("train.seed")),
    ("a bad doctor threshold", |s| s.doctor.stall_epochs = 1, Some("doctor.stall_epochs")),
];

#[test]
fn check_enforces_every_rule() {
    for (what, change, expected) in CHECK_ROWS {
        let mut spec = minimal();
        change(&mut spec);
        match (spec.clone().check(), expected) {
            (Ok(checked), None) => assert_eq!(checked.spec(), &spec, "{what}"),
            (Err(err), Some(key)) => {
                assert_eq!(err.key(), Some(*key), "{what}: {err}");
                assert_well_formed(&err);
            }
            (Ok(_), Some(key)) => panic!("{what}: accepted, expected an error about `{key}`"),
            (Err(err), None) => panic!("{what}: rejected: {err}"),
        }
    }
}

#[test]
fn check_error_messages_read_well() {
    let mut spec = minimal();
    spec.model.dropout = 1.0;
    assert_eq!(
        spec.check().unwrap_err().to_string(),
        "`model.dropout` = 1 is not allowed: expected a probability in [0, 1)"
    );
    let mut spec = minimal();
    spec.data.dataset = DatasetName::Csv;
    let err = spec.check().unwrap_err();
    assert!(matches!(err, SpecError::Missing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "`data.path` is required: dataset = \"csv\" needs a file"
    );
    let mut spec = minimal();
    spec.data.path = Some("x.csv".into());
    assert_eq!(
        spec.check().unwrap_err().to_string(),
        "`data.path` = \"x.csv\" is not allowed: expected no value unless dataset = \"csv\" \
         (builtin datasets know their own)"
    );
}

/// A change to the default thresholds and the key whose rule it breaks (`None`: valid).
type DoctorRow = (
    &'static str,
    fn(&mut DoctorThresholds),
    Option<&'static str>,
);

#[rustfmt::skip]
const DOCTOR_ROWS: &[DoctorRow] = &[
    ("dead warning 0", |d| d.dead_fraction_warning = 0.0, None),
    ("dead both 1", |d| { d.dead_fraction_warning = 1.0; d.dead_fraction_error = 1.0 }, None),
    ("dead warning below 0", |d| d.dead_fraction_warning = -0.1, Some("doctor.dead_fraction_warning")),
    ("dead error above 1", |d| d.dead_fraction_error = 1.1, Some("doctor.dead_fraction_error")),
    ("dead error NaN", |d| d.dead_fraction_error = f64::NAN, Some("doctor.dead_fraction_error")),
    ("dead error below warning", |d| d.dead_fraction_error = 0.09, Some("doctor.dead_fraction_error")),
    ("dead error equal to warning", |d| d.dead_fraction_error = 0.1, None),
    ("saturated warning above 1", |d| d.saturated_fraction_warning = 1.5, Some("doctor.saturated_fraction_warning")),
    ("saturated error below 0", |d| d.saturated_fraction_error = -0.5, Some("doctor.saturated_fraction_error")),
    ("saturated error below warning", |d| d.saturated_fraction_error = 0.2, Some("doctor.saturated_fraction_error")),
    ("saturated error equal to warning", |d| d.saturated_fraction_error = 0.25, None),
    ("dormant tau 0", |d| d.dormant_tau = 0.0, None),
    ("dormant tau above 1", |d| d.dormant_tau = 1.01, Some("doctor.dormant_tau")),
    ("stall improvement 1", |d| d.stall_min_improvement = 1.0, None),
    ("stall improvement below 0", |d| d.stall_min_improvement = -0.01, Some("doctor.stall_min_improvement")),
    ("vanishing 0.5", |d| d.vanishing_ratio = 0.5, None),
    ("vanishing 0", |d| d.vanishing_ratio = 0.0, Some("doctor.vanishing_ratio")),
    ("vanishing 1", |d| d.vanishing_ratio = 1.0, Some("doctor.vanishing_ratio")),
    ("exploding 2", |d| d.exploding_ratio = 2.0, None),
    ("exploding 1", |d| d.exploding_ratio = 1.0, Some("doctor.exploding_ratio")),
    ("exploding infinite", |d| d.exploding_ratio = f64::INFINITY, Some("doctor.exploding_ratio")),
    ("init tolerance 1.5", |d| d.init_scale_tolerance = 1.5, None),
    ("init tolerance 1", |d| d.init_scale_tolerance = 1.0, Some("doctor.init_scale_tolerance")),
    ("stall epochs 2", |d| d.stall_epochs = 2, None),
    ("stall epochs 1", |d| d.stall_epochs = 1, Some("doctor.stall_epochs")),
    ("stall epochs 100000", |d| d.stall_epochs = 100_000, None),
    ("stall epochs 100001", |d| d.stall_epochs = 100_001, Some("doctor.stall_epochs")),
];

#[test]
fn doctor_thresholds_check_enforces_every_rule() {
    DoctorThresholds::default()
        .check()
        .expect("the defaults are valid");
    for (what, change, expected) in DOCTOR_ROWS {
        let mut thresholds = DoctorThresholds::default();
        change(&mut thresholds);
        match (thresholds.check(), expected) {
            (Ok(()), None) => {}
            (Err(err), Some(key)) => {
                assert_eq!(err.key(), Some(*key), "{what}: {err}");
                assert_well_formed(&err);
            }
            (Ok(()), Some(key)) => panic!("{what}: accepted, expected an error about `{key}`"),
            (Err(err), None) => panic!("{what}: rejected: {err}"),
        }
    }
}

/// A spec text, the expected position of its parse error and the message's start.
const PARSE_ROWS: &[(&str, usize, usize, &str)] = &[
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\nactivation = \"relux\"\n",
        5,
        14,
        "`model.activation`: unknown variant `relux`, expected one of `relu`, `leaky_relu`",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhiden = [1]\n",
        4,
        1,
        "unknown key `model.hiden` (did you mean `model.hidden`?)",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nlearnig_rate = 0.1\n",
        6,
        1,
        "unknown key `train.learnig_rate` (did you mean `train.learning_rate`?)",
    ),
    (
        "learnig_rate = 0.1\n[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n",
        1,
        1,
        "unknown key `learnig_rate` (did you mean `train.learning_rate`?)",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[trian]\nepochs = 1\n",
        5,
        2,
        "unknown key `trian` (did you mean `train`?)",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[doctor]\nstall_epocs = 3\n",
        6,
        1,
        "unknown key `doctor.stall_epocs` (did you mean `doctor.stall_epochs`?)",
    ),
    (
        "[data]\ndataset = \"digitz\"\n[model]\nhidden = [1]\n",
        2,
        11,
        "`data.dataset`: unknown variant `digitz`, expected one of `digits`",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1, \"a\"]\n",
        4,
        14,
        "`model.hidden[1]`: invalid type: string \"a\", expected an integer >= 0",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nlearning_rate = \"fast\"\n",
        6,
        17,
        "`train.learning_rate`: invalid type: string \"fast\", expected a number",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nepochs = -1\n",
        6,
        10,
        "`train.epochs`: invalid value: integer `-1`, expected an integer >= 0",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\nbatch_norm = 1\n",
        5,
        14,
        "`model.batch_norm`: invalid type: integer `1`, expected a boolean",
    ),
    (
        "data = 1\n[model]\nhidden = [1]\n",
        1,
        8,
        "`data`: invalid type: integer `1`, expected a table",
    ),
    // Syntax errors have no serde path: the key is read off the line.
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nepochs = \n",
        6,
        10,
        "`train.epochs`: ",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1,,2]\n",
        4,
        13,
        "`model.hidden`: ",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\nhidden = [2]\n",
        5,
        1,
        "`model.hidden`: duplicate key `hidden`",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[model]\n",
        5,
        1,
        "invalid table header: duplicate key `model`",
    ),
    (
        "[data]\ndataset = \"digits\"\n[model]\nactivation = \"relu\"\n",
        3,
        1,
        "missing required key `model.hidden`",
    ),
    (
        "[data]\ndataset = \"digits\"\n",
        1,
        1,
        "missing required section `[model]`",
    ),
    (
        "[model]\nhidden = [1]\n[data]\nstandardize = true\n",
        3,
        1,
        "missing required key `data.dataset`",
    ),
    // Columns count characters, not bytes.
    ("name = \"é\" é\n", 1, 12, "`name`: "),
];

#[test]
fn parse_errors_are_one_line_with_position_and_key() {
    for (text, line, column, start) in PARSE_ROWS {
        let (got_line, got_column, message) = parse_error(text);
        assert!(
            message.starts_with(start),
            "{message:?} should start with {start:?}"
        );
        assert_eq!((got_line, got_column), (*line, *column), "{message}");
        let shown = Spec::from_toml_str(text, "test").unwrap_err().to_string();
        assert_eq!(shown, format!("{line}:{column}: {message}"));
        assert!(!shown.contains('\n'), "{shown:?}");
    }
}

#[test]
fn closest_key_suggests_only_near_misses() {
    let rows: &[(&str, Option<&str>)] = &[
        ("hiden", Some("model.hidden")),
        ("model.hiden", Some("model.hidden")),
        ("learnig_rate", Some("train.learning_rate")),
        ("train.learnig_rate", Some("train.learning_rate")),
        ("model.learning_rate", Some("train.learning_rate")),
        ("modle.hidden", Some("model.hidden")),
        ("epoch", Some("train.epochs")),
        ("batchsize", Some("train.batch_size")),
        ("activaton", Some("model.activation")),
        ("model.dropot", Some("model.dropout")),
        ("trian", Some("train")),
        ("doctr", Some("doctor")),
        ("model.nope", None),
        ("nope", None),
        ("x", None),
        ("lr", None),
    ];
    for (key, expected) in rows {
        assert_eq!(closest_key(key).as_deref(), *expected, "{key}");
    }
}

#[test]
fn keys_list_every_key_of_a_full_spec() {
    let table: toml::Table = toml::from_str(&parse(FULL_CSV).to_toml()).unwrap();
    let mut written: Vec<String> = Vec::new();
    for (key, value) in &table {
        match value {
            toml::Value::Table(section) => {
                written.extend(section.keys().map(|k| format!("{key}.{k}")));
            }
            _ => written.push(key.clone()),
        }
    }
    written.sort();
    let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    keys.sort();
    assert_eq!(written, keys);
    // Every key is also something `get` can read on a full spec.
    let full = parse(FULL_CSV);
    for key in KEYS {
        assert!(full.get(key).is_some(), "{key}");
    }
}

#[test]
fn to_toml_round_trips() {
    for text in [MINIMAL, EXAMPLE, FULL_CSV] {
        let spec = parse(text);
        let written = spec.to_toml();
        assert_eq!(parse(&written), spec, "{written}");
    }
    let written = parse(FULL_CSV).to_toml();
    for part in [
        "[doctor]",
        "path = \"data/houses.csv.gz\"",
        "task = \"regression\"",
        "dense = [32]",
    ] {
        assert!(written.contains(part), "{part} missing from\n{written}");
    }
    // Unset optional csv keys are left out rather than written empty.
    let written = minimal().to_toml();
    for key in ["\npath =", "\ntarget =", "\ntask ="] {
        assert!(!written.contains(key), "{key} in\n{written}");
    }
}

#[test]
fn apply_change_sets_one_key() {
    let base = minimal();
    let rows: &[(&str, &str, &str)] = &[
        ("model.activation", "leaky_relu", "leaky_relu"),
        ("model.activation", "\"tanh\"", "tanh"),
        ("train.learning_rate", "0.01", "0.01"),
        ("train.learning_rate", "1", "1.0"),
        ("model.hidden", "[64, 64]", "[64, 64]"),
        ("model.output_activation", "none", "none"),
        ("model.batch_norm", "true", "true"),
        ("train.epochs", "5", "5"),
        ("doctor.stall_epochs", "9", "9"),
        ("data.path", "data/x.csv", "data/x.csv"),
        ("name", "renamed", "renamed"),
    ];
    for (key, value, expected) in rows {
        let changed = base
            .apply_change(key, value)
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        assert_eq!(
            changed.get(key).as_deref(),
            Some(*expected),
            "{key}={value}"
        );
        for other in KEYS.iter().filter(|k| *k != key) {
            assert_eq!(
                changed.get(other),
                base.get(other),
                "{key}={value} moved {other}"
            );
        }
    }
    assert_eq!(base, minimal(), "apply_change leaves its spec alone");

    let from_sigmoid = base
        .apply_change("model.output_activation", "sigmoid")
        .unwrap();
    let none = from_sigmoid
        .apply_change("model.output_activation", "none")
        .unwrap();
    assert_eq!(none.model.output_activation, OutputActivation::None);

    // A change can still break a rule: check catches it.
    let err = base
        .apply_change("train.momentum", "0.9")
        .unwrap()
        .check()
        .unwrap_err();
    assert_eq!(err.key(), Some("train.momentum"));
}

#[test]
fn apply_change_rejects_bad_keys_and_values() {
    let base = minimal();
    let rows: &[(&str, &str, &str)] = &[
        (
            "model.activation",
            "relux",
            "`model.activation` = relux is not allowed: expected one of `relu`, `leaky_relu`",
        ),
        ("model.nope", "1", "unknown key `model.nope`"),
        (
            "train.learnig_rate",
            "0.1",
            "unknown key `train.learnig_rate` (did you mean `train.learning_rate`?)",
        ),
        (
            "train.learning_rate",
            "fast",
            "`train.learning_rate` = fast is not allowed: expected a number",
        ),
        (
            "train.epochs",
            "-3",
            "`train.epochs` = -3 is not allowed: expected an integer >= 0",
        ),
        (
            "model.hidden",
            "[1, \"a\"]",
            "`model.hidden` = [1, \"a\"] is not allowed: expected an integer >= 0",
        ),
    ];
    let err = base.apply_change("train.epochs", "1\nx").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`train.epochs` = \"1\\nx\" is not allowed: expected an integer >= 0"
    );
    for (key, value, start) in rows {
        let err = base.apply_change(key, value).unwrap_err();
        assert_eq!(err.key(), Some(*key), "{err}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(start),
            "{shown:?} should start with {start:?}"
        );
        assert_well_formed(&err);
    }
}

#[test]
fn get_reads_values_in_toml_syntax() {
    let spec = minimal();
    assert_eq!(spec.get("name").as_deref(), Some("test"));
    assert_eq!(spec.get("train.epochs").as_deref(), Some("20"));
    assert_eq!(spec.get("train.learning_rate").as_deref(), Some("0.001"));
    assert_eq!(spec.get("model.hidden").as_deref(), Some("[32]"));
    assert_eq!(spec.get("model.activation").as_deref(), Some("relu"));
    assert_eq!(spec.get("data.path"), None, "unset");
    assert_eq!(spec.get("model.nope"), None, "unknown");
}

#[test]
fn activation_gain_matches_pytorch() {
    // torch.nn.init.calculate_gain: 'relu' 1.4142135623730951, 'tanh' 1.6666666666666667,
    // ('leaky_relu', 0.01) 1.4141428569978354, ('leaky_relu', 0.2) 1.3867504905630728,
    // 'sigmoid' 1, 'linear' 1.
    let rows: &[(Activation, f64, f64)] = &[
        (Activation::Relu, 0.01, SQRT_2),
        (Activation::Tanh, 0.01, 1.666_666_666_666_666_7),
        (Activation::LeakyRelu, 0.01, 1.414_142_856_997_835_4),
        (Activation::LeakyRelu, 0.2, 1.386_750_490_563_072_8),
        (Activation::LeakyRelu, 0.0, SQRT_2),
        (Activation::Sigmoid, 0.01, 1.0),
        (Activation::Identity, 0.01, 1.0),
        // Documented choices beyond PyTorch: SELU 1, the relu-like rest sqrt(2).
        (Activation::Selu, 0.01, 1.0),
        (Activation::Elu, 0.01, SQRT_2),
        (Activation::Gelu, 0.01, SQRT_2),
        (Activation::Silu, 0.01, SQRT_2),
        (Activation::Softplus, 0.01, SQRT_2),
    ];
    for (activation, slope, expected) in rows {
        let gain = activation.gain(*slope);
        assert!(
            (gain - expected).abs() < 1e-12,
            "{activation} {slope}: {gain} vs {expected}"
        );
    }
}

#[test]
fn activation_families() {
    for name in Activation::ALL {
        let a: Activation = name.parse().unwrap();
        assert!(!(a.is_relu_family() && a.is_squashing()), "{a}");
    }
    assert!(Activation::Relu.is_relu_family() && Activation::LeakyRelu.is_relu_family());
    assert!(Activation::Tanh.is_squashing() && Activation::Sigmoid.is_squashing());
    assert!(!Activation::Identity.is_relu_family() && !Activation::Identity.is_squashing());
}

#[test]
fn output_activation_ranges() {
    let rows = [
        (OutputActivation::None, (f64::NEG_INFINITY, f64::INFINITY)),
        (OutputActivation::Relu, (0.0, f64::INFINITY)),
        (OutputActivation::Softplus, (0.0, f64::INFINITY)),
        (OutputActivation::Sigmoid, (0.0, 1.0)),
        (OutputActivation::Tanh, (-1.0, 1.0)),
    ];
    for (head, range) in rows {
        assert_eq!(head.range(), range, "{head}");
    }
}

#[test]
fn checked_spec_task_follows_the_dataset() {
    for name in DatasetName::ALL {
        let dataset: DatasetName = name.parse().unwrap();
        let mut spec = minimal();
        spec.data.dataset = dataset;
        if dataset == DatasetName::Csv {
            csv(&mut spec);
        }
        let expected = match dataset {
            DatasetName::Diabetes | DatasetName::Sine => Task::Regression,
            _ => Task::Classification,
        };
        assert_eq!(spec.check().unwrap().task(), expected, "{name}");
    }
    let mut spec = minimal();
    csv(&mut spec);
    spec.data.task = Some(Task::Regression);
    assert_eq!(spec.check().unwrap().task(), Task::Regression);
}

/// Every enum's `ALL`, `as_str`, `FromStr` and serde spelling agree.
fn assert_enum_spellings<T>(key: &str, all: &[&str])
where
    T: std::str::FromStr<Err = String> + fmt::Display + Copy + PartialEq + fmt::Debug,
{
    for text in all {
        let value: T = text.parse().unwrap();
        assert_eq!(value.to_string(), *text);
        let changed = minimal()
            .apply_change(key, text)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changed.get(key).as_deref(), Some(*text));
    }
    let err = "nonsense".parse::<T>().unwrap_err();
    assert!(err.contains(&all.join(", ")), "{err}");
}

#[test]
fn enum_spellings_agree() {
    assert_enum_spellings::<DatasetName>("data.dataset", DatasetName::ALL);
    assert_enum_spellings::<Task>("data.task", Task::ALL);
    assert_enum_spellings::<TargetScale>("data.target_scale", TargetScale::ALL);
    assert_enum_spellings::<ModelKind>("model.kind", ModelKind::ALL);
    assert_enum_spellings::<Activation>("model.activation", Activation::ALL);
    assert_enum_spellings::<OutputActivation>("model.output_activation", OutputActivation::ALL);
    assert_enum_spellings::<Init>("model.init", Init::ALL);
    assert_enum_spellings::<Optimizer>("train.optimizer", Optimizer::ALL);
    assert_enum_spellings::<Backend>("train.backend", Backend::ALL);
    assert_eq!(Activation::ALL.len(), 10);
    assert_eq!(DatasetName::ALL.len(), 10);
}

/// TOML's spelling of a float (Rust's `Debug` writes NaN as `NaN`, TOML wants `nan`).
fn toml_float(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else {
        format!("{value:?}")
    }
}

/// Floats that hit the interesting places: anything, near the bounds, and the exact bounds.
fn float_near(bounds: &'static [f64]) -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -2.0..2.0f64,
        prop::sample::select(bounds),
        prop::sample::select(bounds).prop_map(|b: f64| b + f64::EPSILON),
        prop::sample::select(bounds).prop_map(|b: f64| b - f64::EPSILON),
    ]
}

/// A mangled version of the example spec: a random edit at a random place.
fn mangled_example() -> impl Strategy<Value = String> {
    (
        0..EXAMPLE.len(),
        0..EXAMPLE.len(),
        "[\\[\\]a-z_.=\"'0-9 \n#{},é-]{0,12}",
    )
        .prop_map(|(at, len, insert)| {
            // EXAMPLE is ASCII, so every byte offset is a char boundary.
            let end = (at + len % 16).min(EXAMPLE.len());
            format!("{}{insert}{}", &EXAMPLE[..at], &EXAMPLE[end..])
        })
}

proptest! {
    #[test]
    fn random_text_never_panics_and_errors_are_one_line(
        text in prop_oneof![any::<String>(), "[\\[\\]a-z_.=\"'0-9 \n#{},-]{0,80}", mangled_example()],
    ) {
        if let Err(err) = Spec::from_toml_str(&text, "test") {
            let shown = err.to_string();
            prop_assert!(!shown.contains('\n'), "{:?}", shown);
            if let SpecError::Parse { line, .. } = err {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1);
            }
        }
    }

    #[test]
    fn learning_rate_is_accepted_iff_positive_and_finite(lr in float_near(&[0.0])) {
        let text = format!("{MINIMAL}[train]\nlearning_rate = {}\n", toml_float(lr));
        let spec = parse(&text);
        prop_assert!(spec.train.learning_rate.to_bits() == lr.to_bits() || lr.is_nan());
        let valid = lr.is_finite() && lr > 0.0;
        match spec.check() {
            Ok(_) => prop_assert!(valid, "accepted {}", lr),
            Err(err) => {
                prop_assert!(!valid, "rejected {}: {}", lr, err);
                prop_assert_eq!(err.key(), Some("train.learning_rate"));
            }
        }
    }

    #[test]
    fn dropout_is_accepted_iff_in_zero_to_one(dropout in float_near(&[0.0, 1.0])) {
        let text = format!("{MINIMAL}dropout = {}\n", toml_float(dropout));
        let valid = dropout.is_finite() && (0.0..1.0).contains(&dropout);
        match parse(&text).check() {
            Ok(_) => prop_assert!(valid, "accepted {}", dropout),
            Err(err) => {
                prop_assert!(!valid, "rejected {}: {}", dropout, err);
                prop_assert_eq!(err.key(), Some("model.dropout"));
            }
        }
    }

    #[test]
    fn epochs_are_accepted_iff_from_1_to_100000(
        epochs in prop_oneof![any::<i64>(), -3i64..200_000, prop::sample::select(&[0i64, 1, 100_000, 100_001][..])],
    ) {
        let text = format!("{MINIMAL}[train]\nepochs = {epochs}\n");
        let valid = (1..=100_000).contains(&epochs);
        match Spec::from_toml_str(&text, "test").and_then(Spec::check) {
            Ok(spec) => {
                prop_assert!(valid, "accepted {}", epochs);
                prop_assert_eq!(spec.train.epochs as i64, epochs);
            }
            Err(err) => {
                prop_assert!(!valid, "rejected {}: {}", epochs, err);
                // Negative numbers fail to parse, the rest fail the check; both name the key.
                prop_assert!(err.to_string().contains("`train.epochs`"), "{}", err);
            }
        }
    }

    #[test]
    fn floats_round_trip_through_to_toml(
        lr in any::<f64>().prop_filter("finite", |x| x.is_finite()),
        bias in any::<f64>().prop_filter("finite", |x| x.is_finite()),
    ) {
        let mut spec = minimal();
        spec.train.learning_rate = lr;
        spec.model.bias_init = bias;
        prop_assert_eq!(parse(&spec.to_toml()), spec);
    }
}
