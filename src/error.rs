//! Errors from the live side (kernel, files under /run), with the step and
//! object they concern and the system's own message.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel request failed.
    #[error("{op} {object}: {message}")]
    Kernel {
        op: String,
        object: String,
        errno: Option<i32>,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn kernel(op: &str, object: impl Into<String>, e: rtnetlink::Error) -> Self {
        let errno = errno(&e);
        let message = match errno {
            Some(n) => io::Error::from_raw_os_error(n).to_string(),
            None => e.to_string(),
        };
        Error::Kernel {
            op: op.to_string(),
            object: object.into(),
            errno,
            message,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => *errno,
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Other(_) => None,
        }
    }
}

/// The positive errno of a netlink error, if it carries one.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}
