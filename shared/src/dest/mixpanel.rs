//! mixpanel
