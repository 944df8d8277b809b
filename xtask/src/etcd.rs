//! The tools the etcd store engine needs: `etcd` for its tests (Debian's `etcd-server`) and
//! `protoc` to build the etcd client (Debian's `protobuf-compiler`), installed with apt-get
//! when missing, as promtool is.

use std::env;
use std::ffi::OsString;

use crate::tool::{apt_install, find_on_path};

/// The etcd binary: `$ETCD_BIN`, else `etcd` on `PATH`, else installed with apt-get (Debian's
/// `etcd-server`).
pub fn ensure_etcd() -> Result<OsString, String> {
    locate_or_install("ETCD_BIN", "etcd", "etcd-server")
}

/// The protobuf compiler: `$PROTOC`, else `protoc` on `PATH`, else installed with apt-get
/// (Debian's `protobuf-compiler`, into /usr/bin: on `PATH` for every later build).
pub fn ensure_protoc() -> Result<OsString, String> {
    locate_or_install("PROTOC", "protoc", "protobuf-compiler")
}

/// `$var`, else `binary` on `PATH`, else `package` installed with apt-get.
fn locate_or_install(
    var: &'static str,
    binary: &'static str,
    package: &str,
) -> Result<OsString, String> {
    if let Some(path) = env::var_os(var).filter(|v| !v.is_empty()) {
        return Ok(path);
    }
    if let Some(path) = find_on_path(binary) {
        return Ok(path.into());
    }
    apt_install(binary, package, binary)
        .map(OsString::from)
        .map_err(|e| format!("{e} or set {var}"))
}
