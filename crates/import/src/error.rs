//! Import errors: one line each, naming the file and the problem.

use std::path::PathBuf;

/// Why a model file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{}: cannot read model file: {source}", path.display())]
    Read {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The extension names no format this tool reads.
    #[error("{}: unknown model format (expected .onnx, .safetensors, .pt or .pth)", path.display())]
    UnknownFormat {
        /// The model file.
        path: PathBuf,
    },
    /// Larger than any model this tool can hold.
    #[error("{}: file is {size} bytes, more than the {limit} bytes a model may have here", path.display())]
    TooLarge {
        /// The model file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The ceiling.
        limit: u64,
    },
    /// Not a well-formed file of its format (truncated, damaged, another format).
    #[error("{}: not a valid {format} file: {problem}", path.display())]
    Corrupt {
        /// The model file.
        path: PathBuf,
        /// `ONNX`, `SafeTensors`, `PyTorch state_dict`.
        format: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// An operator this tool cannot represent.
    #[error("{}: unsupported operator {op} at node {node:?}: {why}", path.display())]
    Unsupported {
        /// The model file.
        path: PathBuf,
        /// The operator (`Attention`, `Conv` with groups, ...).
        op: String,
        /// The node's name in the file.
        node: String,
        /// Why, and what would work.
        why: String,
    },
    /// Layers this tool reads one by one, in an arrangement its networks cannot express.
    #[error("{}: {problem} (at {node:?})", path.display())]
    Layout {
        /// The model file.
        path: PathBuf,
        /// The node or tensor name.
        node: String,
        /// What the arrangement is and what would be needed.
        problem: String,
    },
    /// A `.pt` file holding a pickled `nn.Module` rather than a state_dict.
    #[error("{}: this file holds a whole pickled model (torch.save(model)), not a state_dict: save it with torch.save(model.state_dict(), path) or export it with torch.onnx.export, then import that", path.display())]
    PickledModule {
        /// The model file.
        path: PathBuf,
    },
    /// The model does not fit the data or the spec given with it.
    #[error("{}: {problem}", path.display())]
    Mismatch {
        /// The model file (or the spec it disagrees with).
        path: PathBuf,
        /// What disagrees.
        problem: String,
    },
}
