//! `taskhost tenant`: create, list and delete tenants, issue and revoke their keys, with the
//! admin key.

use std::io::Write;

use anyhow::Context;
use serde::Deserialize;

use super::client::Client;
use super::output::{print_json, print_table, time};
use super::{KeyCommand, TenantCommand};

/// Runs a `tenant` command.
pub fn run(client: &Client, command: TenantCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    match command {
        TenantCommand::Add { id } => {
            client.create_tenant(&id)?;
            writeln!(
                stdout,
                "created tenant {id}: `taskhost tenant key new {id}` issues it a key"
            )?;
        }
        TenantCommand::List { json } => list(client, json)?,
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
            command: KeyCommand::Revoke { id, key_id },
        } => {
            client.revoke_key(&id, &key_id)?;
            writeln!(stdout, "revoked key {key_id} of tenant {id}")?;
        }
    }
    Ok(())
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
            [tenant.id.clone(), keys.join(", "), time(&tenant.created_at)]
        })
        .collect();
    print_table(["TENANT", "KEYS", "CREATED"], &rows)
}
