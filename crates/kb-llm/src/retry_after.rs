//! The delay a server asks for: `Retry-After` as seconds or as an HTTP date (RFC 9110),
//! or the `retry-after-ms` header some OpenAI-compatible gateways send.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// The requested delay, if the headers carry a readable one.
pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    parse(text("retry-after")?, now)
}

/// `"3"`, `"1.5"` or `"Wed, 21 Oct 2015 07:28:00 GMT"`; a date in the past means now.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // bounded so a huge number cannot overflow Duration
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn seconds_dates_and_garbage() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 07:28:00
        assert_eq!(parse("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:28:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse("-1", now), None);
        assert_eq!(parse("soon", now), None);
    }

    #[test]
    fn milliseconds_header_wins() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("9"));
        assert_eq!(
            from_headers(&h, SystemTime::now()),
            Some(Duration::from_secs(9))
        );
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(
            from_headers(&h, SystemTime::now()),
            Some(Duration::from_millis(250))
        );
        assert_eq!(from_headers(&HeaderMap::new(), SystemTime::now()), None);
    }
}
