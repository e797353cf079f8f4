//! Analysis cache keyed by normalized statement text (literals stripped) plus everything else the
//! analysis depends on, so a repeated query shape costs a hash lookup, not a parse. Statements whose
//! analysis looked at a literal's value are cached by their exact text only.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::facts::Analysis;
use super::lexer::{normalize, LexError};
use super::{analyze, AnalyzeCtx, AnalyzeError};

const SHARDS: usize = 16;

/// What an analysis depends on besides the text: catalog generation, search paths, user. Kept as
/// two 64-bit hashes under keys drawn at start, so that a client, who chooses its search_path
/// strings, cannot work out two contexts that share an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context(u64, u64);

static CONTEXT_KEYS: std::sync::LazyLock<[ahash::RandomState; 2]> =
    std::sync::LazyLock::new(|| [ahash::RandomState::new(), ahash::RandomState::new()]);

impl Context {
    pub fn new(ctx: &AnalyzeCtx<'_>) -> Context {
        let hash = |key: &ahash::RandomState| {
            let mut h = key.build_hasher();
            ctx.catalog.generation.hash(&mut h);
            ctx.search_paths.hash(&mut h);
            ctx.user.hash(&mut h);
            ctx.revert_paths.hash(&mut h);
            h.finish()
        };
        let [a, b] = &*CONTEXT_KEYS;
        Context(hash(a), hash(b))
    }
}

enum Entry {
    Shape(Arc<Analysis>),
    /// The shape is literal-sensitive: look the exact text up instead.
    Sensitive,
}

/// One shard's entries and their estimated memory (see `weight`).
#[derive(Default)]
struct ShardMap {
    entries: HashMap<(Context, String), Entry>,
    bytes: usize,
}

type Shard = Mutex<ShardMap>;

/// Longer statements are analyzed every time: their analyses grow with their text (a list of
/// thousands of columns keeps megabytes), and a client could fill memory with distinct ones.
pub const MAX_CACHED_TEXT: usize = 16 * 1024;

/// Estimated bytes a shard may hold.
const SHARD_BYTES: usize = 8 << 20;

/// The key's text and what the entry's analysis keeps (round 135: estimated as 20 times the text,
/// an analysis that expanded a short statement kept 300 times more than estimated).
fn weight(key: &(Context, String), e: &Entry) -> usize {
    let analysis = match e {
        Entry::Shape(a) => a.weight(),
        Entry::Sensitive => 0,
    };
    key.1.len() + 256 + analysis
}

/// A bounded, sharded cache shared by all sessions.
pub struct AnalysisCache {
    shards: Vec<Shard>,
    per_shard: usize,
    hasher: ahash::RandomState,
}

/// A looked-up (or freshly computed) analysis with the normalized text the audit trail uses.
pub struct Looked {
    pub normalized: String,
    pub analysis: Result<Arc<Analysis>, AnalyzeError>,
    pub hit: bool,
}

impl AnalysisCache {
    pub fn new(capacity: usize) -> Self {
        AnalysisCache {
            shards: (0..SHARDS).map(|_| Mutex::new(ShardMap::default())).collect(),
            per_shard: (capacity / SHARDS).max(16),
            hasher: ahash::RandomState::new(),
        }
    }

    fn shard(&self, key: &(Context, String)) -> &Shard {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn get(&self, key: &(Context, String)) -> Option<Result<Arc<Analysis>, ()>> {
        let shard = self.shard(key).lock().ok()?;
        match shard.entries.get(key)? {
            Entry::Shape(a) => Some(Ok(a.clone())),
            Entry::Sensitive => Some(Err(())),
        }
    }

    fn put(&self, key: (Context, String), e: Entry) {
        if key.1.len() > MAX_CACHED_TEXT {
            return;
        }
        if let Ok(mut shard) = self.shard(&key).lock() {
            let w = weight(&key, &e);
            if shard.entries.len() >= self.per_shard || shard.bytes + w > SHARD_BYTES {
                // Bounded memory: a full shard starts over rather than tracking recency.
                shard.entries.clear();
                shard.bytes = 0;
            }
            if shard.entries.insert(key, e).is_none() {
                shard.bytes += w;
            }
        }
    }

    /// Analyzes `sql`, or returns the cached analysis of its shape.
    pub fn analyze(&self, sql: &str, ctx: AnalyzeCtx<'_>) -> Result<Looked, LexError> {
        let normalized = normalize(sql)?.text;
        let cx = Context::new(&ctx);
        let shape_key = (cx, normalized);
        let exact_key = |n: &str| (cx, format!("\u{0}{n}"));
        match self.get(&shape_key) {
            Some(Ok(a)) => {
                return Ok(Looked {
                    normalized: shape_key.1,
                    analysis: Ok(a),
                    hit: true,
                })
            }
            Some(Err(())) => {
                if let Some(Ok(a)) = self.get(&exact_key(sql)) {
                    return Ok(Looked {
                        normalized: shape_key.1,
                        analysis: Ok(a),
                        hit: true,
                    });
                }
            }
            None => {}
        }
        let analysis = analyze(sql, ctx).map(Arc::new);
        if let Ok(a) = &analysis {
            if a.literal_sensitive {
                self.put(exact_key(sql), Entry::Shape(a.clone()));
                self.put(shape_key.clone(), Entry::Sensitive);
            } else {
                self.put(shape_key.clone(), Entry::Shape(a.clone()));
            }
        }
        Ok(Looked {
            normalized: shape_key.1,
            analysis,
            hit: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn public() -> Vec<Vec<String>> {
        vec![vec!["public".to_string()]]
    }

    /// Login `u` with the given search paths and nothing to revert to.
    fn ctx<'a>(catalog: &'a Catalog, search_paths: &'a [Vec<String>]) -> AnalyzeCtx<'a> {
        AnalyzeCtx {
            catalog,
            search_paths,
            user: "u",
            revert_paths: &[],
            abandoned: Default::default(),
        }
    }

    /// Red-team round 13: the context was one hash under fixed keys, so a client could search
    /// offline for two search paths whose analyses would share an entry.
    #[test]
    fn contexts_are_hashed_under_keys_no_client_knows() {
        let (cat, paths) = (Catalog::default().with_system_snapshot(), public());
        let ctx = ctx(&cat, &paths);
        let mut fixed = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
        cat.generation.hash(&mut fixed);
        paths.hash(&mut fixed);
        "u".hash(&mut fixed);
        let none: &[Vec<String>] = &[];
        none.hash(&mut fixed);
        let c = Context::new(&ctx);
        assert_ne!(c.0, fixed.finish());
        assert_ne!(c.0, c.1, "two independent keys");
        assert_eq!(c, Context::new(&ctx));
    }

    /// Red-team round 17: distinct statements with thousands of columns, each kept, grew the
    /// proxy by 100 MB a second until it died. Long texts are not kept, and shards are bounded
    /// by estimated bytes as well as by entries.
    #[test]
    fn the_cache_is_bounded_by_size_not_only_by_count() {
        let (cat, paths) = (Catalog::default().with_system_snapshot(), public());
        let ctx = ctx(&cat, &paths);
        let c = AnalysisCache::new(1_000_000);
        let wide = |n: usize, tag: usize| {
            let cols: Vec<String> = (0..n).map(|i| format!("relname AS c{tag}_{i}")).collect();
            format!("SELECT {} FROM pg_class", cols.join(", "))
        };
        let long = wide(1_000, 0);
        assert!(long.len() > MAX_CACHED_TEXT);
        assert!(!c.analyze(&long, ctx).unwrap().hit);
        assert!(
            !c.analyze(&long, ctx).unwrap().hit,
            "a long statement is analyzed again"
        );
        for tag in 0..2_000 {
            c.analyze(&wide(300, tag), ctx).unwrap();
        }
        for shard in &c.shards {
            let s = shard.lock().unwrap();
            assert!(s.bytes <= SHARD_BYTES, "{} bytes in a shard", s.bytes);
            assert_eq!(s.bytes, s.entries.iter().map(|(k, e)| weight(k, e)).sum::<usize>());
        }
        // Round 135: a short statement that expands to many columns weighs what it expands to.
        let mut expanding = "WITH c0 AS (SELECT 1 a, 2 b, 3 c, 4 d, 5 e, 6 f)".to_owned();
        for i in 1..=8 {
            expanding.push_str(&format!(", c{i} AS (SELECT * FROM c{} a, c{} b)", i - 1, i - 1));
        }
        expanding.push_str(" SELECT * FROM c8");
        let a = c.analyze(&expanding, ctx).unwrap().analysis.unwrap();
        assert!(
            a.weight() > 200 * expanding.len(),
            "{} for {} bytes",
            a.weight(),
            expanding.len()
        );
        let short = wide(3, 1);
        c.analyze(&short, ctx).unwrap();
        assert!(c.analyze(&short, ctx).unwrap().hit, "short statements are still cached");
    }

    #[test]
    fn shapes_share_entries_but_sensitive_ones_do_not() {
        let (cat, paths) = (Catalog::default().with_system_snapshot(), public());
        let ctx = ctx(&cat, &paths);
        let c = AnalysisCache::new(1000);
        assert!(
            !c.analyze("SELECT relname FROM pg_class WHERE oid = 1", ctx)
                .unwrap()
                .hit
        );
        assert!(
            c.analyze("SELECT relname FROM pg_class WHERE oid = 2", ctx)
                .unwrap()
                .hit
        );
        // ORDER BY position: the literal decides which column is sorted, so no sharing.
        let a = c.analyze("SELECT relname, oid FROM pg_class ORDER BY 1", ctx).unwrap();
        assert!(!a.hit);
        let b = c.analyze("SELECT relname, oid FROM pg_class ORDER BY 2", ctx).unwrap();
        assert!(!b.hit);
        assert!(
            c.analyze("SELECT relname, oid FROM pg_class ORDER BY 2", ctx)
                .unwrap()
                .hit
        );
        assert!(c
            .analyze("SELECT relname, oid FROM pg_class ORDER BY $1", ctx)
            .unwrap()
            .analysis
            .is_ok());
        assert!(c.analyze("SELECT U&'x'", ctx).is_err());
        // The number of values a lookup tests decides the verdict: list lengths are part of the
        // shape, and an array literal (one `?` however long) is cached by its exact text.
        assert!(
            !c.analyze("SELECT 1 FROM pg_class WHERE relname IN ('a')", ctx)
                .unwrap()
                .hit
        );
        assert!(
            !c.analyze("SELECT 1 FROM pg_class WHERE relname IN ('a', 'b')", ctx)
                .unwrap()
                .hit
        );
        assert!(
            !c.analyze("SELECT 1 FROM pg_class WHERE relname = ANY('{a}')", ctx)
                .unwrap()
                .hit
        );
        assert!(
            !c.analyze("SELECT 1 FROM pg_class WHERE relname = ANY('{a,b}')", ctx)
                .unwrap()
                .hit
        );
        // Which setting set_config changes is a literal: asyncpg's `jit` must not vouch for `role`.
        let settings = |sql: &str| {
            let l = c.analyze(sql, ctx).unwrap();
            let names: Vec<String> = l.analysis.unwrap().statements[0]
                .settings
                .iter()
                .map(|s| s.name.clone())
                .collect();
            (l.hit, names)
        };
        assert_eq!(
            settings("SELECT set_config('jit', 'off', false)"),
            (false, vec!["jit".to_string()])
        );
        assert_eq!(
            settings("SELECT set_config('role', 'x', false)"),
            (false, vec!["role".to_string()])
        );
        assert_eq!(
            settings("SET search_path = a"),
            (false, vec!["search_path".to_string()])
        );
        let other = c.analyze("SET search_path = b", ctx).unwrap();
        assert!(!other.hit);
        assert_eq!(
            other.analysis.unwrap().statements[0].path_change,
            Some(crate::analyze::facts::PathChange::To(vec!["b".to_string()]))
        );
    }
}
