//! The image store (DESIGN.md `images/`): content-addressed blobs, image
//! configs, a tag index and layers unpacked once per chain id.

use crate::error::{err, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The parts of an image config (OCI image-spec "config") a container needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

/// A resolved image, ready to become a container's rootfs.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the image config.
    pub id: String,
    /// The name it was found by (`busybox:latest`), if any.
    pub name: Option<String>,
    pub config: RunConfig,
    /// Unpacked layer directories, lowest first (overlayfs lowerdir order reversed).
    pub layers: Vec<PathBuf>,
}

/// The store under `<root>/images`.
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        Ok(Store { dir: root.join("images") })
    }

    /// Finds an image by `name[:tag]` (default tag `latest`, docker's name
    /// normalization), by `sha256:` id, or by a unique id prefix.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        err(format!("images: not implemented yet (resolving {reference})"))
    }
}
