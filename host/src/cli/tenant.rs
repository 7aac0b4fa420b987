//! `taskhost tenant`: create, list and delete tenants, issue and revoke their keys, with the
//! admin key.

use std::io::Write;

use anyhow::Context;
use serde::Deserialize;
use taskhost::tenants::{ApiKey, Quotas};

use super::client::Client;
use super::output::{print_json, print_table, time};
use super::{KeyCommand, TenantCommand};

/// Runs a `tenant` command.
pub fn run(client: &Client, command: TenantCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    match command {
        TenantCommand::Add { id, quotas } => {
            client.create_tenant(&id, &quotas_of(quotas)?)?;
            writeln!(
                stdout,
                "created tenant {id}: `taskhost tenant key new {id}` issues it a key"
            )?;
        }
        TenantCommand::List { json } => list(client, json)?,
        TenantCommand::Quotas { id, quotas, clear } => {
            let tenant = match quotas.is_empty() && !clear {
                true => client.tenant(&id)?,
                false => client.set_quotas(&id, &quotas_of(quotas)?)?,
            };
            print_json(&tenant["quotas"])?;
        }
        TenantCommand::Rm { id } => {
            client.delete_tenant(&id)?;
            writeln!(stdout, "deleted tenant {id}; its keys no longer work")?;
        }
        TenantCommand::Key {
            command: KeyCommand::New { id },
        } => {
            let issued = client.issue_key(&id)?;
            // The key alone on stdout, for `KEY=$(taskhost tenant key new ID)`.
            writeln!(stdout, "{}", issued.key)?;
            eprintln!(
                "issued key {} to tenant {id}; it is not shown again",
                issued.id
            );
        }
        TenantCommand::Key {
            command: KeyCommand::Generate,
        } => {
            let key = ApiKey::new_tenant_key().context("the OS gave no random bytes")?;
            writeln!(stdout, "{}", key.expose())?;
            let hash = serde_json::to_string(&key.hash()).expect("a hash serializes");
            eprintln!(
                "its hash, for the tenant in the config file: key_hashes = [{hash}]\n\
                 keep the key secret; the server keeps only the hash"
            );
        }
        TenantCommand::Key {
            command: KeyCommand::Revoke { id, key_id },
        } => {
            client.revoke_key(&id, &key_id)?;
            writeln!(stdout, "revoked key {key_id} of tenant {id}")?;
        }
    }
    Ok(())
}

/// The quotas `NAME=VALUE` given, checked as the server checks them.
fn quotas_of(given: Vec<(String, u64)>) -> anyhow::Result<Quotas> {
    let object: serde_json::Map<String, serde_json::Value> = given
        .into_iter()
        .map(|(name, value)| (name, value.into()))
        .collect();
    serde_json::from_value(object.into())
        .context("not a quota (see `taskhost tenant quotas --help`)")
}

/// `GET /v1/admin/tenants`: the parts the table shows.
#[derive(Deserialize)]
struct TenantList {
    tenants: Vec<Tenant>,
}

#[derive(Deserialize)]
struct Tenant {
    id: String,
    created_at: String,
    keys: Vec<Key>,
    origin: String,
}

#[derive(Deserialize)]
struct Key {
    id: String,
}

fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list = client.tenants()?;
    if json {
        return print_json(&list);
    }
    let list: TenantList =
        serde_json::from_value(list).context("the server's tenant list has an unexpected shape")?;
    let rows: Vec<_> = list
        .tenants
        .iter()
        .map(|tenant| {
            let keys: Vec<&str> = tenant.keys.iter().map(|key| key.id.as_str()).collect();
            let origin = tenant.origin.clone();
            [
                tenant.id.clone(),
                keys.join(", "),
                origin,
                time(&tenant.created_at),
            ]
        })
        .collect();
    print_table(["TENANT", "KEYS", "ORIGIN", "CREATED"], &rows)
}
