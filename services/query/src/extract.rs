//! Request extractors whose rejections are problem documents (axum's own answer text/plain).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::problem::ApiError;

/// A JSON object body. A body that is not JSON, not an object (serde would take an array for a
/// struct, field by position) or not of the request's shape is a 400 naming the problem; a
/// wrong content type 415; a body over the limit 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(e @ JsonRejection::JsonDataError(_)) => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
            }
            Err(e) => return Err(ApiError::new(e.status(), e.body_text())),
        };
        if !value.is_object() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object",
            ));
        }
        // With the path of the offending field, as axum's own extractor says it.
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not a valid request: {e}"),
                )
            })
    }
}

/// A path parameter (not valid percent-encoded UTF-8 → 400).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(e @ PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
            }
            Err(e) => Err(ApiError::new(e.status(), e.body_text())),
        }
    }
}
