//! Placeholder: this crate is empty until the server issue fills it. Nothing here works yet.
