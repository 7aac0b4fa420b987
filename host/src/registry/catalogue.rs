//! The tasks each caller sees.
//!
//! The operator's tasks directory is the shared catalogue: every tenant sees it. Each tenant
//! also has a directory of its own uploads, `DATA_DIR/tenants/ID/tasks`, that nobody else
//! sees; a name there shadows the shared task of that name for that tenant only. Each
//! directory has its own [`Registry`] and [`TaskLoader`]; one [`TaskWatcher`] follows them
//! all, and every loader compiles through the one [`ComponentCache`], so the same bytes in
//! two namespaces compile once.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::{Lookup, Registry, Snapshot, TaskLoader, TaskVersion, TaskWatcher, UploadError};
use super::{TasksSettings, WatchError};
use crate::cache::ComponentCache;
use crate::metrics::Metrics;
use crate::tenants::TenantId;

/// Whose view of the tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The operator's tasks, shared by every tenant.
    Shared,
    /// A tenant's: its own uploads, and the shared tasks it has not shadowed.
    Tenant(&'a TenantId),
}

/// One directory of tasks and the registry loaded from it.
#[derive(Clone)]
struct Namespace {
    registry: Arc<Registry>,
    loader: Arc<TaskLoader>,
}

impl Namespace {
    /// The (empty) namespace of `dir`, `owner`'s tasks (`None`: the operator's), compiled
    /// through `cache`.
    fn new(
        dir: PathBuf,
        owner: Option<TenantId>,
        cache: &Arc<ComponentCache>,
        metrics: &Arc<Metrics>,
    ) -> Self {
        let registry = Arc::new(Registry::default());
        let loader = TaskLoader::new(dir, owner, cache.clone(), registry.clone(), metrics.clone());
        Self {
            registry,
            loader: Arc::new(loader),
        }
    }
}

/// Every namespace of tasks: the shared one and each tenant's.
pub struct Catalogue {
    shared: Namespace,
    tenants: RwLock<HashMap<TenantId, Namespace>>,
    watcher: TaskWatcher,
    /// Where tenants' directories are made: `DATA_DIR/tenants`.
    tenants_dir: PathBuf,
    cache: Arc<ComponentCache>,
    metrics: Arc<Metrics>,
}

impl Catalogue {
    /// Loads the shared tasks directory of `settings` and the directory of each of `tenants`
    /// under `tenants_dir` (made if missing), in the background unless
    /// `settings.wait_until_loaded`, and follows them as `settings` says.
    pub fn open(
        settings: &TasksSettings,
        tenants_dir: PathBuf,
        tenants: impl IntoIterator<Item = TenantId>,
        cache: Arc<ComponentCache>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WatchError> {
        let shared = Namespace::new(settings.dir.clone(), None, &cache, &metrics);
        let mut own = HashMap::new();
        for tenant in tenants {
            let dir = tenant_tasks_dir(&tenants_dir, &tenant)?;
            let namespace = Namespace::new(dir, Some(tenant.clone()), &cache, &metrics);
            own.insert(tenant, namespace);
        }
        let loaders = std::iter::once(&shared)
            .chain(own.values())
            .map(|namespace| namespace.loader.clone())
            .collect();
        let watcher = TaskWatcher::start(loaders, settings.watch, settings.debounce)?;
        if settings.wait_until_loaded {
            watcher.wait_until_loaded();
        }
        Ok(Self {
            shared,
            tenants: RwLock::new(own),
            watcher,
            tenants_dir,
            cache,
            metrics,
        })
    }

    /// Gives the new tenant `id` its (empty) namespace.
    pub fn add_tenant(&self, id: &TenantId) -> Result<(), WatchError> {
        let dir = tenant_tasks_dir(&self.tenants_dir, id)?;
        let namespace = Namespace::new(dir, Some(id.clone()), &self.cache, &self.metrics);
        self.watcher.add(namespace.loader.clone())?;
        self.write().insert(id.clone(), namespace);
        Ok(())
    }

    /// Forgets the tenant `id`'s namespace and deletes its uploads. Jobs holding one of its
    /// versions keep it until they end.
    pub fn remove_tenant(&self, id: &TenantId) -> std::io::Result<()> {
        let Some(namespace) = self.write().remove(id) else {
            return Ok(());
        };
        self.watcher.remove(namespace.loader.dir());
        match std::fs::remove_dir_all(self.tenants_dir.join(id.as_str())) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// What `scope` knows of `name`. A tenant sees its own upload of the name if it has one
    /// (serving, loading or failed), else the shared task; it is never told why a shared file
    /// did not load (that is the operator's, with the operator's paths).
    pub fn lookup(&self, scope: Scope<'_>, name: &str) -> Lookup {
        let Some(own) = self.namespace(scope) else {
            return self.shared.registry.lookup(name);
        };
        match own.registry.lookup(name) {
            Lookup::Missing(None) => match self.shared.registry.lookup(name) {
                Lookup::Missing(_) => Lookup::Missing(None),
                found => found,
            },
            own => own,
        }
    }

    /// Everything `scope` sees, sorted by name. A tenant's revision is the sum of its
    /// namespace's and the shared one's, so it grows with a change to either; the problems it
    /// sees are its own files' (the shared files' are the operator's).
    pub fn snapshot(&self, scope: Scope<'_>) -> Snapshot {
        let shared = self.shared.registry.snapshot();
        let Some(own) = self.namespace(scope) else {
            return shared;
        };
        let mut own = own.registry.snapshot();
        let shadowed: BTreeSet<String> = own
            .tasks
            .iter()
            .map(|version| version.name.clone())
            .chain(own.problems.keys().cloned())
            .chain(own.loading.iter().cloned())
            .collect();
        own.revision += shared.revision;
        own.tasks.extend(
            shared
                .tasks
                .into_iter()
                .filter(|version| !shadowed.contains(&version.name)),
        );
        own.tasks.sort_by(|a, b| a.name.cmp(&b.name));
        own.loading.extend(
            shared
                .loading
                .into_iter()
                .filter(|name| !shadowed.contains(name)),
        );
        own
    }

    /// The revision of what `scope` sees: as [`snapshot`](Self::snapshot) gives it, without
    /// copying the tasks.
    pub fn revision(&self, scope: Scope<'_>) -> u64 {
        let own = self
            .namespace(scope)
            .map_or(0, |namespace| namespace.registry.revision());
        self.shared.registry.revision() + own
    }

    /// Waits up to `wait` until `done` holds, checking it again at every change `scope` can
    /// see.
    pub async fn wait_until(&self, scope: Scope<'_>, wait: Duration, done: impl Fn() -> bool) {
        // Nearly always so (a job's task is not loading): then nothing is subscribed.
        if done() {
            return;
        }
        // Subscribed before the next check: a change after it is never missed.
        let mut shared = self.shared.registry.subscribe();
        let mut own = self
            .namespace(scope)
            .map(|namespace| namespace.registry.subscribe());
        let changes = async {
            while !done() {
                let changed = match &mut own {
                    Some(own) => tokio::select! {
                        changed = shared.changed() => changed,
                        changed = own.changed() => changed,
                    },
                    None => shared.changed().await,
                };
                // A namespace gone (its tenant deleted) has nothing more to wait for.
                if changed.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(wait, changes).await;
    }

    /// The versions `tenant`'s own uploads serve.
    pub fn uploads_of(&self, tenant: &TenantId) -> Vec<Arc<TaskVersion>> {
        self.namespace(Scope::Tenant(tenant))
            .map(|own| own.registry.snapshot().tasks)
            .unwrap_or_default()
    }

    /// How many names, in every namespace, are loading for the first time.
    pub fn loading(&self) -> usize {
        let tenants = self.read();
        self.shared.registry.loading()
            + tenants
                .values()
                .map(|namespace| namespace.registry.loading())
                .sum::<usize>()
    }

    /// Whether changed files are loaded as they change.
    pub fn is_watching(&self) -> bool {
        self.watcher.is_watching()
    }

    /// Makes `bytes` the task `name` in `scope`'s own namespace (see [`TaskLoader::upload`]).
    pub fn upload(
        &self,
        scope: Scope<'_>,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Arc<TaskVersion>, bool), UploadError> {
        let namespace = self.own(scope).ok_or(UploadError::TenantGone)?;
        namespace.loader.upload(name, bytes)
    }

    /// Deletes the task `name` of `scope`'s own namespace and its file; false if it has none
    /// (a tenant cannot delete a shared task, nor one of a tenant deleted meanwhile).
    pub fn delete(&self, scope: Scope<'_>, name: &str) -> std::io::Result<bool> {
        match self.own(scope) {
            Some(namespace) => namespace.loader.delete(name),
            None => Ok(false),
        }
    }

    /// The namespace `scope` writes into: `None` for a tenant deleted meanwhile.
    fn own(&self, scope: Scope<'_>) -> Option<Namespace> {
        match scope {
            Scope::Shared => Some(self.shared.clone()),
            Scope::Tenant(_) => self.namespace(scope),
        }
    }

    /// The tenant's own namespace, for a tenant's scope that has one.
    fn namespace(&self, scope: Scope<'_>) -> Option<Namespace> {
        match scope {
            Scope::Shared => None,
            Scope::Tenant(id) => self.read().get(id).cloned(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TenantId, Namespace>> {
        self.tenants.read().expect("catalogue poisoned")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<TenantId, Namespace>> {
        self.tenants.write().expect("catalogue poisoned")
    }
}

/// The tasks directory of `tenant` under `tenants_dir`, made if missing.
fn tenant_tasks_dir(tenants_dir: &Path, tenant: &TenantId) -> Result<PathBuf, WatchError> {
    let dir = tenants_dir.join(tenant.as_str()).join("tasks");
    std::fs::create_dir_all(&dir).map_err(|source| WatchError::CreateDir {
        dir: dir.clone(),
        source,
    })?;
    Ok(dir)
}
