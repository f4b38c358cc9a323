//! amplitude
