//! Test harness: a real PostgreSQL for tests, one fresh database per test.
//!
//! Uses `DATABASE_URL` (a role that may create databases) when it is set;
//! otherwise starts one throwaway cluster per test process from the
//! machine's server binaries (see [`crate::cluster`]), which goes away with
//! the process. Enabled by the `testkit` feature; not for production code.

use std::path::PathBuf;

use sqlx::migrate::MigrateDatabase;
use sqlx::Connection;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::cluster::{ClusterOptions, LocalCluster};
use crate::db::{Db, DbConfig};

static CLUSTER: OnceCell<LocalCluster> = OnceCell::const_new();

/// A migrated database of its own for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub db: Db,
    /// Owner URL (migrations, admin).
    pub url: String,
    pub name: String,
}

impl TestDb {
    /// The runtime config for services under test.
    pub fn config(&self) -> DbConfig {
        DbConfig::new(self.url.clone())
    }

    /// Drops the database (best effort; throwaway clusters vanish anyway).
    pub async fn cleanup(self) {
        self.db.close().await;
        if std::env::var("DATABASE_URL").is_ok() {
            let _ = sqlx::Postgres::drop_database(&self.url).await;
        }
    }
}

/// The admin URL for database `name`.
async fn url_for(name: &str) -> String {
    if let Ok(base) = std::env::var("DATABASE_URL") {
        return match base.rfind('/') {
            Some(i) if base[..i].contains("://") && i > base.find("://").map_or(0, |j| j + 2) => {
                let query = base[i..].find('?').map(|q| &base[i + q..]).unwrap_or("");
                format!("{}/{}{}", &base[..i], name, query)
            }
            _ => format!("{}/{}", base.trim_end_matches('/'), name),
        };
    }
    let cluster = CLUSTER
        .get_or_try_init(|| async {
            let dir: PathBuf = std::env::temp_dir().join(format!("mp-test-pg-{}", Uuid::new_v4().simple()));
            LocalCluster::start(ClusterOptions {
                data_dir: dir,
                port: None,
                persistent: false,
            })
            .await
        })
        .await;
    match cluster {
        Ok(c) => c.url(name),
        Err(e) => {
            panic!("cannot start a PostgreSQL for tests (set DATABASE_URL to use an existing one): {e}")
        }
    }
}

/// Creates and migrates a fresh database for one test.
pub async fn test_db() -> TestDb {
    let name = format!("mp_test_{}", Uuid::new_v4().simple());
    let url = url_for(&name).await;
    if let Err(e) = sqlx::Postgres::create_database(&url).await {
        panic!("cannot create test database {name}: {e}");
    }
    if let Err(e) = Db::migrate(&url).await {
        panic!("migrations failed on {name}: {e}");
    }
    // A test that leaves a transaction idle while it waits on something
    // else (say, a lock its own transaction holds) would hang the whole run;
    // the server ends such a session after a minute, so the test fails
    // instead, naming itself.
    let guard = format!("ALTER DATABASE {name} SET idle_in_transaction_session_timeout = '60s'");
    match sqlx::PgConnection::connect(&url).await {
        Ok(mut conn) => {
            if let Err(e) = sqlx::Executor::execute(&mut conn, guard.as_str()).await {
                panic!("cannot set the idle-transaction guard on {name}: {e}");
            }
        }
        Err(e) => panic!("cannot connect to {name}: {e}"),
    }
    let db = match Db::connect(&DbConfig {
        max_connections: 8,
        ..DbConfig::new(url.clone())
    })
    .await
    {
        Ok(db) => db,
        Err(e) => panic!("cannot connect to {name}: {e}"),
    };
    TestDb { db, url, name }
}

/// What [`seed_org`] created.
#[derive(Debug, Clone)]
pub struct SeededOrg {
    pub tenant: crate::Tenant,
    pub slug: String,
    pub admin: crate::users::User,
    pub password: String,
    pub equipment: crate::equipment::Equipment,
    pub device: crate::devices::Device,
    /// The device's MQTT secret (username `{slug}/{device name}`).
    pub device_secret: String,
    /// One sensor per metric, in the order given.
    pub sensors: Vec<crate::devices::Sensor>,
}

/// The password of every seeded admin.
pub const SEED_PASSWORD: &str = "correct horse battery";

/// An organization `slug` with an admin `admin@{slug}.test`, one machine
/// (asset tag `P-101`), one gateway `gw-01` and a sensor per metric.
pub async fn seed_org(db: &Db, slug: &str, metrics: &[&str]) -> SeededOrg {
    use crate::devices::{self, NewDevice, NewSensor};
    use crate::equipment::{self, NewEquipment};
    use crate::users::{self, NewUser};
    let seeded = async {
        let org = crate::organizations::create(db, slug, &format!("{slug} inc")).await?;
        let tenant = crate::Tenant::system(org.id, "test");
        let mut tx = db.tenant(org.id).await?;
        let admin = users::create(
            &mut tx,
            &tenant,
            NewUser {
                email: format!("admin@{slug}.test"),
                name: "Admin".into(),
                role: crate::auth::Role::Admin,
                password: SEED_PASSWORD.into(),
            },
        )
        .await?;
        let equipment = equipment::create(
            &mut tx,
            &tenant,
            NewEquipment {
                name: "Cooling pump".into(),
                asset_tag: "P-101".into(),
                parent_id: None,
                description: String::new(),
                location: "Hall 1".into(),
                criticality: Some("high".into()),
            },
        )
        .await?;
        let creds = devices::create_device(
            &mut tx,
            &tenant,
            NewDevice {
                name: "gw-01".into(),
                description: String::new(),
            },
        )
        .await?;
        let (device, device_secret) = (creds.device, creds.secret);
        let mut sensors = Vec::new();
        for m in metrics {
            let new = NewSensor {
                device_id: device.id,
                equipment_id: equipment.id,
                metric: m.to_string(),
                name: None,
                unit: String::new(),
                min_value: None,
                max_value: None,
            };
            sensors.push(devices::create_sensor(&mut tx, &tenant, new).await?);
        }
        tx.commit().await?;
        Ok::<_, crate::ModelError>(SeededOrg {
            tenant,
            slug: slug.to_string(),
            admin,
            password: SEED_PASSWORD.to_string(),
            equipment,
            device,
            device_secret,
            sensors,
        })
    };
    match seeded.await {
        Ok(s) => s,
        Err(e) => panic!("cannot seed organization {slug}: {e}"),
    }
}
