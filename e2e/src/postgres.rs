//! Finds or starts the Postgres server the stack uses, in this order: the admin URL in
//! `TEST_DATABASE_URL` or `DATABASE_URL`; a server answering on 127.0.0.1:5432 as user
//! `postgres`; a throwaway cluster from the local PostgreSQL binaries in a temporary
//! folder (as root it runs as the `postgres` user, since initdb refuses root), removed
//! when dropped. A chaos run that restarts Postgres starts such a cluster of its own
//! ([`Postgres::start_own`]), since a shared server is not its to restart.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};

use crate::hosts::Place;

/// How a stop ends the server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Connections cut, every commit written out first: a clean outage.
    Fast,
    /// Every server process gone at once, as in a crash: commits made without a WAL flush
    /// (`synchronous_commit = off`) and not yet written are lost, and the server replays
    /// its WAL when it starts.
    Immediate,
}

/// A reachable Postgres server and, when we started it, the cluster to stop.
#[derive(Debug)]
pub struct Postgres {
    /// A URL allowed to create databases.
    pub admin_url: String,
    /// The cluster we started: restarted by [`Postgres::restart`], stopped by its `Drop`.
    cluster: Option<Cluster>,
}

#[derive(Debug)]
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    /// Where the server runs and listens: the loopback, or a test host's namespace.
    place: Place,
}

impl Postgres {
    pub async fn find_or_start() -> anyhow::Result<Self> {
        if let Ok(url) =
            std::env::var("TEST_DATABASE_URL").or_else(|_| std::env::var("DATABASE_URL"))
        {
            answers(&url).await.with_context(|| {
                format!("Postgres at {url} (from TEST_DATABASE_URL/DATABASE_URL)")
            })?;
            return Ok(Self {
                admin_url: url,
                cluster: None,
            });
        }
        let local = "postgres://postgres@127.0.0.1:5432/postgres";
        if answers(local).await.is_ok() {
            return Ok(Self {
                admin_url: local.into(),
                cluster: None,
            });
        }
        let cluster = Cluster::start("", Place::default())?;
        let port = cluster.port;
        let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        answers(&admin_url).await?;
        Ok(Self {
            admin_url,
            cluster: Some(cluster.cluster),
        })
    }

    /// A throwaway cluster of our own, even when a server already answers: the one
    /// Postgres a run may restart ([`Postgres::restart`]) without disturbing anyone else.
    pub async fn start_own() -> anyhow::Result<Self> {
        Self::start_own_with(&[]).await
    }

    /// [`Postgres::start_own`] with server settings of the test's choosing (`-c NAME=VALUE`,
    /// after and so over the harness's own).
    pub async fn start_own_with(settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_own_at(Place::default(), settings).await
    }

    /// [`Postgres::start_own_with`] at `place`: on a test host, the server runs in that
    /// host's namespace and listens on its address only, so every connection to it
    /// crosses the hosts' network.
    pub async fn start_own_at(place: Place, settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let settings: Vec<String> = settings
            .iter()
            .map(|(name, value)| format!(" -c {name}={value}"))
            .collect();
        let host = place.ip;
        let started =
            tokio::task::spawn_blocking(move || Cluster::start(&settings.concat(), place))
                .await??;
        let admin_url = format!("postgres://postgres@{host}:{}/postgres", started.port);
        answers(&admin_url).await?;
        Ok(Self {
            admin_url,
            cluster: Some(started.cluster),
        })
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server comes back on the same
    /// port and data, and this returns once it accepts connections again. Only for a
    /// cluster we started: a server found running belongs to someone else.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl("restart", Shutdown::Fast).await?;
        answers(&self.admin_url).await
    }

    /// Stopped (`pg_ctl stop -m fast` or `-m immediate`), `down` of nothing, then started
    /// again: an outage, not a blip. Returns once the server accepts connections again.
    /// Only for a cluster we started.
    pub async fn stop_for(&self, down: Duration, how: Shutdown) -> anyhow::Result<()> {
        self.pg_ctl("stop", how).await?;
        tokio::time::sleep(down).await;
        // `restart` of a stopped server starts it with the options it last ran with
        // (postmaster.opts: port, socket folder, settings), which `start` would not.
        self.restart().await
    }

    /// `pg_ctl -w -m MODE ACTION` on the cluster we started; a server found running
    /// belongs to someone else and is not ours to stop or restart.
    async fn pg_ctl(&self, action: &str, how: Shutdown) -> anyhow::Result<()> {
        let Some(cluster) = &self.cluster else {
            bail!("this Postgres was found running, not started by us: not ours to {action}");
        };
        let mode = match how {
            Shutdown::Fast => "fast",
            Shutdown::Immediate => "immediate",
        };
        let mut command = cluster.command("pg_ctl");
        command
            .arg("-D")
            .arg(cluster.dir.join("data"))
            .arg("-l")
            .arg(cluster.dir.join("server.log"))
            .args(["-w", "-m", mode, action]);
        tokio::task::spawn_blocking(move || run(&mut command)).await?
    }

    /// Fails, saying so plainly, when the server has fewer than `needed` connection slots
    /// free: otherwise a service would wait out its pool's timeout and answer "pool timed
    /// out", which hides that Postgres itself said "too many clients".
    pub async fn ensure_free_slots(&self, needed: u32) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        let (max, used): (i32, i64) = sqlx::query_as(
            "SELECT current_setting('max_connections')::int, \
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
        )
        .fetch_one(&mut conn)
        .await?;
        let free = i64::from(max) - used;
        if free < i64::from(needed) {
            bail!(
                "Postgres at {} has no room for this stack: {free} of its {max} connection slots \
                 are free (max_connections) and the stack needs {needed}. Other stacks or clients \
                 hold the rest: stop them, raise max_connections, or let scripts/test start a \
                 cluster of its own (leave TEST_DATABASE_URL unset)",
                self.admin_url
            );
        }
        Ok(())
    }

    /// Creates database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        Ok(platform::db::database_url(&self.admin_url, name))
    }

    /// Drops database `name`, closing its connections.
    pub async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

async fn answers(url: &str) -> anyhow::Result<()> {
    let connect = PgConnection::connect(url);
    let mut conn = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .context("timed out")??;
    sqlx::query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

struct Started {
    cluster: Cluster,
    port: u16,
}

impl Cluster {
    /// Makes and starts a cluster at `place`; `settings` is appended to the server's
    /// options.
    fn start(settings: &str, place: Place) -> anyhow::Result<Started> {
        let bin = bindir().context(
            "no Postgres found: set DATABASE_URL to an admin URL, start a server on \
             127.0.0.1:5432, or install PostgreSQL (Debian: apt-get install postgresql)",
        )?;
        let dir = std::env::temp_dir().join(format!("shop-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let as_postgres = nix::unistd::geteuid().is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(&dir))
                .context("chown the cluster folder to the postgres user")?;
        }
        let host = place.ip;
        let cluster = Cluster {
            dir: dir.clone(),
            bin,
            as_postgres,
            place,
        };
        // On a host of its own any port is free; on the loopback, one of the free ones.
        let port = match cluster.place.netns {
            Some(_) => 5432,
            None => crate::net::free_port()?,
        };
        let data = dir.join("data");
        run(cluster.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]))?;
        if cluster.place.netns.is_some() {
            // initdb trusts the loopback only; on a test host every client (the test on
            // the bridge, the services on their hosts) is on the hosts' subnet.
            let mut hba = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("pg_hba.conf"))
                .context("opening pg_hba.conf")?;
            std::io::Write::write_all(&mut hba, b"host all all samenet trust\n")
                .context("writing pg_hba.conf")?;
        }
        let options = format!(
            "-p {port} -k {} -c listen_addresses={host} -c max_connections=300 -c fsync=off{settings}",
            dir.display()
        );
        run(cluster
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "start", "-o", &options]))?;
        Ok(Started { cluster, port })
    }

    /// `tool` run at the cluster's place (the server `pg_ctl` starts inherits its
    /// namespace), as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        self.command_at(&self.place, tool)
    }

    fn command_at(&self, place: &Place, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut command = place.command("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            place.command(path)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stopping needs no network (pg_ctl signals the server by its pid file): from
        // here, so that it works even if the server's namespace is already gone.
        let _ = self
            .command_at(&Place::default(), "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bindir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
