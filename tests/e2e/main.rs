//! End-to-end tests: the whole system on free ports against a real
//! PostgreSQL and an MQTT broker — the embedded one, and for every
//! broker-dependent scenario also a throwaway Mosquitto — driven through
//! MQTT and HTTP as a gateway and a user would.
#![allow(clippy::unwrap_used)]

mod mosquitto;
mod support;

mod dead_letters;
mod demo;
mod device_identity;
mod loop_to_work_order;
mod shared_subscription;
mod sparkplug;
mod tenancy;
