//! Hostile input from the open internet, with real sockets against `mailsite serve`:
//! each attack named in the hardening work, its bound asserted, and nothing that was
//! accepted lost. One module per kind of attack.

#[path = "../common/mod.rs"]
mod common;
mod preauth;
mod smtp;
mod throttle;
