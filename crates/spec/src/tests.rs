use super::*;

#[test]
fn explore() {
    let cases = [
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\nactivation = \"relux\"\n",
        "[data]\ndataset = \"digits\"\n[model]\nhiden = [1]\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nlearnig_rate = 0.1\n",
        "learnig_rate = 0.1\n[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[trian]\nepochs = 1\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1, \"a\"]\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nlearning_rate = \"fast\"\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nepochs = -1\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[train]\nepochs = \n",
        "[data]\ndataset = \"digits\"\n[model]\nactivation = \"relu\"\n",
        "[data]\ndataset = \"digits\"\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[doctor]\nstall_epocs = 3\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[doctor]\nstall_epochs = 3.5\n",
        "[data]\ndataset = \"digitz\"\n[model]\nhidden = [1]\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\nname = \"é\" é\n",
        "data = 1\n[model]\nhidden = [1]\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n[model]\nkind = \"mlp\"\n",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\nhidden = [2]\n",
        "[data]\ndataset = \"digits\"\nmodel = { hiden = [1] }\n",
    ];
    for c in cases {
        match Spec::from_toml_str(c, "x") {
            Ok(s) => println!("OK {s:?}"),
            Err(e) => println!("ERR {e} || {e:?}"),
        }
    }
    let s = Spec::from_toml_str("[data]\ndataset = \"digits\"\n[model]\nhidden = [1]\n", "x").unwrap();
    println!("{}", s.to_toml());
    for (k, v) in [("model.activation", "leaky_relu"), ("train.learning_rate", "0.01"), ("model.hidden", "[64, 64]"), ("model.output_activation", "none"), ("model.activation", "relux"), ("model.nope", "1"), ("train.epochs", "-3"), ("train.learning_rate", "fast"), ("name", "foo"), ("data.path", "a/b.csv"), ("train.learnig_rate", "1")] {
        match s.apply_change(k, v) {
            Ok(s2) => println!("OK {k} -> {:?}", s2.get(k)),
            Err(e) => println!("ERR {k}: {e}"),
        }
    }
    for k in ["hiden", "learnig_rate", "model.nope", "nope", "trian", "model.learning_rate", "modle.hidden", "epoch", "batchsize", "lr", "activaton", "model.dropot", "x", "data.dataset"] {
        println!("{k} -> {:?}", closest_key(k));
    }
}
