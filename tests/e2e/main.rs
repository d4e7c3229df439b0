//! End-to-end tests: the whole system on free ports against a real
//! PostgreSQL and the embedded MQTT broker, driven through MQTT and HTTP
//! as a gateway and a user would.
#![allow(clippy::unwrap_used)]

mod support;

mod dead_letters;
mod demo;
mod loop_to_work_order;
mod tenancy;
