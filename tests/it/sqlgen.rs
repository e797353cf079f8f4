//! A random generator of SELECT statements over the sample schema, for the differential test: nested
//! and correlated subqueries, CTEs, LATERAL, joins, set operations, functions in FROM, whole-row
//! references, and aliases that reuse protected column names, so that name resolution is stressed.

/// xorshift64*: deterministic for a seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A table the generator may read: qualified name and column names.
#[derive(Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
}

/// A FROM item in scope: its alias and the names of its columns.
#[derive(Clone)]
struct Item {
    alias: String,
    columns: Vec<String>,
}

/// Names that collide with protected columns, so a wrong resolution shows.
const NAMES: &[&str] = &[
    "phone",
    "email",
    "iban",
    "notes",
    "name",
    "city",
    "customer_no",
    "note",
    "x",
    "v",
    "g",
    "unnest",
    "case",
];

pub struct Gen<'a> {
    rng: Rng,
    tables: &'a [Table],
    aliases: usize,
}

impl<'a> Gen<'a> {
    pub fn new(seed: u64, tables: &'a [Table]) -> Gen<'a> {
        Gen {
            rng: Rng::new(seed),
            tables,
            aliases: 0,
        }
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        // Half the time reuse a short name, so inner and outer aliases shadow each other.
        if self.rng.chance(50) {
            format!("t{}", self.rng.below(3))
        } else {
            format!("a{}", self.aliases)
        }
    }

    fn name(&mut self) -> String {
        let n = *self.rng.pick(NAMES);
        if n == "case" {
            "\"case\"".to_owned()
        } else {
            n.to_owned()
        }
    }

    /// A whole statement.
    pub fn statement(&mut self) -> String {
        self.aliases = 0;
        match self.rng.below(10) {
            0 => self.update_returning(),
            1 => {
                let (q, cols) = self.query(&[], 2);
                let n = cols.len();
                let names: Vec<String> = (0..n).map(|_| self.name()).collect();
                let rest = vec!["NULL"; n].join(", ");
                format!(
                    "WITH RECURSIVE r({}) AS ({q} UNION ALL SELECT {rest} FROM r WHERE false) SELECT * FROM r",
                    names.join(", ")
                )
            }
            _ => self.query(&[], 3).0,
        }
    }

    /// UPDATE ... FROM ... RETURNING, alone or as a writable CTE.
    fn update_returning(&mut self) -> String {
        let t = self.rng.pick(self.tables).clone();
        let alias = self.alias();
        let set = self.rng.pick(&t.columns).clone();
        let target = Item {
            alias: alias.clone(),
            columns: t.columns.clone(),
        };
        let (from, item) = self.table_expr(&[vec![target.clone()]], 2, &[], false);
        let scope = vec![vec![target, item]];
        let ret = if self.rng.chance(40) {
            "*".to_owned()
        } else {
            self.expr(&scope, 1)
        };
        let cond = self.condition(&scope, 1);
        let update = format!(
            "UPDATE {} {alias} SET {set} = {alias}.{set} FROM {from} WHERE {cond} RETURNING {ret}",
            t.name
        );
        if self.rng.chance(50) {
            update
        } else {
            let w = self.alias();
            format!(
                "WITH {w} AS ({update}) SELECT {} FROM {w}",
                *self
                    .rng
                    .pick(&[&format!("{w}::text"), "*", &format!("row_to_json({w})::text")][..])
            )
        }
    }

    /// A query and its output column names.
    fn query(&mut self, outer: &[Vec<Item>], depth: usize) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut ctes = Vec::new();
        if depth > 1 && self.rng.chance(20) {
            let (body, cols) = self.select(outer, depth - 1);
            let name = self.alias();
            sql.push_str(&format!("WITH {name} AS ({body}) "));
            ctes.push(Item {
                alias: name,
                columns: cols,
            });
        }
        let (first, cols) = self.select_with(outer, depth, &ctes);
        sql.push_str(&first);
        if depth > 1 && self.rng.chance(15) {
            let op = *self.rng.pick(&["UNION ALL", "UNION", "EXCEPT", "INTERSECT"]);
            let (second, _) = self.select_with(outer, depth - 1, &ctes);
            sql = format!("{sql} {op} {second}");
        }
        (sql, cols)
    }

    fn select(&mut self, outer: &[Vec<Item>], depth: usize) -> (String, Vec<String>) {
        self.select_with(outer, depth, &[])
    }

    fn select_with(&mut self, outer: &[Vec<Item>], depth: usize, ctes: &[Item]) -> (String, Vec<String>) {
        let mut scope: Vec<Item> = Vec::new();
        let mut from = Vec::new();
        let n_items = 1 + self.rng.below(if depth > 1 { 3 } else { 2 });
        for i in 0..n_items {
            let mut visible = outer.to_vec();
            visible.push(scope.clone());
            let (text, item) = self.table_expr(&visible, depth, ctes, i > 0);
            let joined = if i == 0 {
                text
            } else {
                let common: Vec<String> = item
                    .columns
                    .iter()
                    .filter(|c| scope.iter().any(|i| i.columns.contains(c)))
                    .cloned()
                    .collect();
                match self.rng.below(7) {
                    5 => format!("NATURAL JOIN {text}"),
                    6 if !common.is_empty() => format!("JOIN {text} USING ({})", self.rng.pick(&common)),
                    0 => format!(
                        "JOIN {text} ON {}",
                        self.condition(&[scope.clone(), vec![item.clone()]], 0)
                    ),
                    1 => format!("LEFT JOIN {text} ON true"),
                    2 => format!("CROSS JOIN {text}"),
                    _ => format!(", {text}"),
                }
            };
            from.push(joined);
            scope.push(item);
        }
        let mut stack = outer.to_vec();
        stack.push(scope.clone());
        let mut items = Vec::new();
        let mut names = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            match self.rng.below(10) {
                0 => {
                    items.push("*".to_owned());
                    names.extend(scope.iter().flat_map(|i| i.columns.clone()));
                }
                1 => {
                    let it = self.rng.pick(&scope).clone();
                    items.push(format!("{}.*", it.alias));
                    names.extend(it.columns);
                }
                _ => {
                    let e = self.expr(&stack, depth);
                    if self.rng.chance(60) {
                        let n = self.name();
                        items.push(format!("{e} AS {n}"));
                        names.push(n.trim_matches('"').to_owned());
                    } else {
                        items.push(e.clone());
                        names.push(e.rsplit('.').next().unwrap_or("?").to_owned());
                    }
                }
            }
        }
        let grouped = self.rng.chance(12);
        if grouped {
            items.truncate(0);
            names.truncate(0);
            let k = self.column(&stack);
            let agg = *self.rng.pick(&[
                "string_agg({}::text, ',')",
                "max({}::text)",
                "count({})",
                "min({}::text)",
            ]);
            items.push(k.clone());
            items.push(agg.replace("{}", &self.column(&stack)));
            names.push(k.rsplit('.').next().unwrap_or("?").to_owned());
            names.push(self.name());
            let last = items.len() - 1;
            items[last] = format!("{} AS {}", items[last], names[last]);
        }
        let distinct = if self.rng.chance(10) { "DISTINCT " } else { "" };
        let mut sql = format!("SELECT {distinct}{} FROM {}", items.join(", "), from.join(" "));
        if self.rng.chance(40) {
            sql.push_str(&format!(" WHERE {}", self.condition(&stack, depth)));
        }
        if grouped {
            let by = if self.rng.chance(50) {
                "1".to_owned()
            } else {
                items[0].clone()
            };
            sql.push_str(&format!(" GROUP BY {by}"));
        }
        if self.rng.chance(15) {
            sql.push_str(&format!(" ORDER BY {}", 1 + self.rng.below(items.len())));
        }
        (sql, names)
    }

    fn table_expr(&mut self, visible: &[Vec<Item>], depth: usize, ctes: &[Item], later: bool) -> (String, Item) {
        let alias = self.alias();
        let choice = self.rng.below(10);
        match choice {
            0..=3 => {
                let t = self.rng.pick(self.tables).clone();
                (
                    format!("{} {alias}", t.name),
                    Item {
                        alias,
                        columns: t.columns,
                    },
                )
            }
            4 | 5 if depth > 1 => {
                let lateral = later && self.rng.chance(50);
                let outer: &[Vec<Item>] = if lateral {
                    visible
                } else {
                    &visible[..visible.len() - 1]
                };
                let (q, cols) = self.query(outer, depth - 1);
                let (list, cols) = self.column_aliases(cols);
                let kw = if lateral { "LATERAL " } else { "" };
                (format!("{kw}({q}) {alias}{list}"), Item { alias, columns: cols })
            }
            6 if !ctes.is_empty() => {
                let c = self.rng.pick(ctes).clone();
                (format!("{} {alias}", c.alias), Item { alias, ..c })
            }
            7 if later && self.rng.chance(50) => {
                let n = self.name();
                let e = self.expr(visible, 1);
                (
                    format!("LATERAL (VALUES ({e}, 'q1')) {alias}({n}, x)"),
                    Item {
                        alias,
                        columns: vec![n.trim_matches('"').to_owned(), "x".to_owned()],
                    },
                )
            }
            7 => {
                let n = self.name();
                let m = self.name();
                (
                    format!("(VALUES ('p1', 'q1'), ('p2', 'q2')) {alias}({n}, {m})"),
                    Item {
                        alias,
                        columns: vec![n.trim_matches('"').to_owned(), m.trim_matches('"').to_owned()],
                    },
                )
            }
            _ => {
                let (f, cols): (&str, &[&str]) = *self.rng.pick(&[
                    ("generate_series(1, 2)", &["?"][..]),
                    ("unnest(array['u1', 'u2'])", &["?"]),
                    (
                        "pg_get_keywords()",
                        &["word", "catcode", "barelabel", "catdesc", "baredesc"],
                    ),
                    ("jsonb_each_text('{\"k\": \"j1\"}')", &["key", "value"]),
                    ("generate_series(1, 1) WITH ORDINALITY", &["?", "ordinality"]),
                    ("upper('w1')", &["?"]),
                ]);
                let mut cols: Vec<String> = cols.iter().map(|c| c.replace('?', &alias)).collect();
                let mut text = format!("{f} {alias}");
                if self.rng.chance(50) {
                    let (list, renamed) = self.column_aliases(cols.clone());
                    text.push_str(&list);
                    cols = renamed;
                }
                (text, Item { alias, columns: cols })
            }
        }
    }

    /// An optional column alias list renaming a prefix of `cols`.
    fn column_aliases(&mut self, mut cols: Vec<String>) -> (String, Vec<String>) {
        if cols.is_empty() || self.rng.chance(50) {
            return (String::new(), cols);
        }
        let n = 1 + self.rng.below(cols.len());
        let mut list = Vec::new();
        for c in cols.iter_mut().take(n) {
            let name = self.name();
            *c = name.trim_matches('"').to_owned();
            list.push(name);
        }
        (format!("({})", list.join(", ")), cols)
    }

    fn column(&mut self, stack: &[Vec<Item>]) -> String {
        let items: Vec<&Item> = stack.iter().flatten().collect();
        if items.is_empty() || self.rng.chance(15) {
            return self.name();
        }
        // Nearer scopes more often.
        let it = if self.rng.chance(60) {
            stack.last().and_then(|s| s.last()).unwrap_or(items[0])
        } else {
            items[self.rng.below(items.len())]
        };
        if it.columns.is_empty() {
            return it.alias.clone();
        }
        let c = self.rng.pick(&it.columns).clone();
        let c = if c == "case" { "\"case\"".to_owned() } else { c };
        if self.rng.chance(50) {
            format!("{}.{c}", it.alias)
        } else {
            c
        }
    }

    fn expr(&mut self, stack: &[Vec<Item>], depth: usize) -> String {
        match self.rng.below(15) {
            0..=4 => self.column(stack),
            5 => format!("{} || ''", self.column(stack)),
            6 => format!("upper({}::text)", self.column(stack)),
            7 => format!("({})", self.column(stack)),
            8 => "'lit'".to_owned(),
            9 => {
                let it = stack
                    .iter()
                    .flatten()
                    .last()
                    .map(|i| i.alias.clone())
                    .unwrap_or_else(|| "x".into());
                match self.rng.below(3) {
                    0 => it,
                    1 => format!("{it}::text"),
                    _ => format!("row_to_json({it})::text"),
                }
            }
            10 => format!(
                "CASE WHEN {} THEN {} ELSE {} END",
                self.condition(stack, 0),
                self.column(stack),
                self.column(stack)
            ),
            11 | 12 if depth > 1 => {
                let (q, _) = self.query(stack, depth - 1);
                format!("(SELECT {} FROM ({q}) {} LIMIT 1)", self.name(), self.alias())
            }
            13 => {
                let items: Vec<&Item> = stack.iter().flatten().collect();
                let Some(it) = items.last() else { return self.name() };
                let field = if it.columns.is_empty() || self.rng.chance(30) {
                    self.name()
                } else {
                    self.rng.pick(&it.columns).clone()
                };
                match self.rng.below(4) {
                    0 => format!("({}).{field}", it.alias),
                    1 => format!("to_jsonb({})->>'{field}'", it.alias),
                    2 => format!("lag({}) OVER (ORDER BY {})", self.column(stack), self.column(stack)),
                    _ => format!(
                        "first_value({}::text) OVER (PARTITION BY {})",
                        self.column(stack),
                        self.column(stack)
                    ),
                }
            }
            _ => format!("coalesce({}::text, 'c')", self.column(stack)),
        }
    }

    fn condition(&mut self, stack: &[Vec<Item>], depth: usize) -> String {
        match self.rng.below(6) {
            0 => format!("{} IS NOT NULL", self.column(stack)),
            1 => format!("{}::text = {}::text", self.column(stack), self.column(stack)),
            2 if depth > 1 => {
                let (q, _) = self.query(stack, depth - 1);
                format!("EXISTS ({q})")
            }
            3 => format!("{}::text <> 'zz'", self.column(stack)),
            _ => "true".to_owned(),
        }
    }
}
