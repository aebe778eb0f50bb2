//! The seed file upload: `POST /api/v1/tokens/import` runs `tessera token import` for an
//! operator who may enroll (never self-service). The body (JSON or a form, up to
//! [`UPLOAD_LIMIT`](super::fields::UPLOAD_LIMIT)) holds `file` (the file's text), `file_name`,
//! `format` (`csv`, `pskc`, `yubikey`; default: detected), `psk` (hex), `password` and
//! `force`. The answer lists the serials stored, never a seed; the audit row names the
//! operator, the file and how many tokens (`crate::admin::import`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::AdminShared;
use super::answer::{ApiError, ok};
use super::guard::Upload;
use crate::admin::Action;
use crate::admin::import::{ImportFormat, ImportKeys, ImportRequest, import as import_file};
use crate::admin::tokens::Admin;
use crate::secret::Secret;

/// `POST /api/v1/tokens/import`: answers `{"serials": [...], "assigned": n}`.
pub async fn import(
    State(shared): State<Arc<AdminShared>>,
    Upload(posted): Upload,
) -> Result<Response, ApiError> {
    let (operator, fields) = (posted.operator, posted.fields);
    operator.require(Action::Enroll)?;
    let file = fields.required("file")?.as_bytes().to_vec();
    let format = match fields.get("format").filter(|f| !f.is_empty()) {
        Some(f) => f.parse::<ImportFormat>().map_err(ApiError::bad_request)?,
        None => ImportFormat::detect(&file),
    };
    let psk = match fields.get("psk").filter(|p| !p.is_empty()) {
        None => None,
        Some(hex) => Some(Secret::new(
            crate::hex::decode(hex.trim())
                .filter(|k| k.len() == 16)
                .ok_or_else(|| ApiError::bad_request("psk: expected 32 hex digits"))?,
        )),
    };
    let password = fields
        .get("password")
        .filter(|p| !p.is_empty())
        .map(Secret::from);
    let request = ImportRequest {
        file_name: fields.get("file_name").unwrap_or("upload").to_string(),
        format,
        file,
        keys: ImportKeys { psk, password },
        overwrite: matches!(fields.get("force"), Some("true" | "1" | "on" | "yes")),
    };
    let live = &operator.caller.live;
    let admin = Admin::new(shared.store.as_ref(), &live.auth);
    let imported = import_file(&admin, &live.realms, &operator.actor(), request).await?;
    Ok(ok(&imported))
}
