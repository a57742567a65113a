//! CLASP: each miner's marginal effect on the loss, against its stage peers, from the epoch's
//! finished paths.
//!
//! Every finished sample crossed one miner per stage and ended with a loss. Model the loss as
//! additive, `loss = mean + Σ_stage effect(miner at that stage) + noise`: a miner's effect is
//! then its Shapley value in the game whose payoff is the loss, since each stage's miners are
//! interchangeable. It is estimated the cheap way the paths allow, as polars aggregations:
//!
//! 1. **Against the stage.** For each (stage, miner): the mean loss of the paths through it
//!    minus the median of its stage's miners' mean losses. While most of a stage is honest the
//!    median is an honest miner's, so adversaries in one stage do not hide each other, as they
//!    would against a leave-one-out mean of their peers.
//! 2. **One backfitting pass.** Paths cross every stage, so a harmful miner at stage 1 raises
//!    the losses of the stage-0 miners whose samples it took. Routing spreads those evenly in
//!    expectation but not in a finite epoch: subtracting from each path's loss the effects
//!    step 1 estimated for its *other* stages and estimating again removes most of that (one
//!    Gauss-Seidel step of the additive model's least squares).
//! 3. **Confidence.** The effect over its standard error (the miner's paths' and the stage's
//!    spread, each over its count); the
//!    confidence is the normal probability that the effect is above zero, which for a miner
//!    that really raises the loss grows towards 1 with the number of its paths.
//!
//! A miner is **flagged** when its t reaches [`Config::z`], its effect is at least
//! [`Config::min_effect`] of its stage's mean loss, and it has [`Config::min_paths`] paths:
//! significant *and* large enough to matter, so that an epoch with very many paths does not
//! flag honest hardware's numerical differences.

use polars::prelude::*;
use sliver_common::{Epoch, StageIndex};

use crate::follow::Path;

/// When CLASP flags a miner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// The effect over its standard error from which a miner is flagged.
    pub z: f64,
    /// Smallest flagged effect, as a fraction of the stage's mean loss.
    pub min_effect: f64,
    /// Fewest paths through a miner for it to be flagged.
    pub min_paths: u64,
}

impl Default for Config {
    /// t >= 4 (a false positive about once in 30 000 honest miner-epochs under the normal
    /// approximation), an effect of at least 1% of the loss, and 20 paths.
    fn default() -> Self {
        Self {
            z: 4.0,
            min_effect: 0.01,
            min_paths: 20,
        }
    }
}

/// One miner's attribution for the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// The miner.
    pub uid: u16,
    /// Its stage.
    pub stage: StageIndex,
    /// Finished paths through it.
    pub paths: u64,
    /// Mean loss of its paths minus the median of its stage's miners', after backfitting
    /// (positive: it raises the loss). Zero when it is alone in its stage.
    pub effect: f64,
    /// The normal probability that its effect is above zero.
    pub confidence: f64,
    /// Significant and large: see the module docs.
    pub flagged: bool,
}

/// The column of the paths table holding the uid of the miner at `stage`.
pub fn stage_column(stage: usize) -> String {
    format!("stage{stage}")
}

/// The epoch's path table: `epoch`, `sample`, `stage0`..`stage{S-1}` (uids), `loss`.
///
/// # Errors
/// When polars fails to build the frame (it does not for well-formed paths).
pub fn paths_frame(epoch: Epoch, stages: usize, paths: &[Path]) -> PolarsResult<DataFrame> {
    let mut columns = vec![
        Column::new("epoch".into(), vec![epoch.get(); paths.len()]),
        Column::new(
            "sample".into(),
            paths.iter().map(|p| p.sample).collect::<Vec<u64>>(),
        ),
    ];
    for s in 0..stages {
        let uids: Vec<u16> = paths
            .iter()
            .map(|p| p.uids.get(s).copied().unwrap_or(u16::MAX))
            .collect();
        columns.push(Column::new(stage_column(s).into(), uids));
    }
    columns.push(Column::new(
        "loss".into(),
        paths
            .iter()
            .map(|p| f64::from(p.loss))
            .collect::<Vec<f64>>(),
    ));
    DataFrame::new(paths.len(), columns)
}

/// Per (stage, uid): the sum, sum of squares and count of `value(stage)` over the paths through
/// the miner. One grouping of the wide table per stage: a path table is never unrolled into
/// one row per (path, stage).
fn per_miner(
    paths: &LazyFrame,
    stages: usize,
    value: impl Fn(usize) -> Expr,
) -> PolarsResult<LazyFrame> {
    let f = || DataType::Float64;
    let parts: Vec<LazyFrame> = (0..stages)
        .map(|s| {
            paths
                .clone()
                .select([col(stage_column(s)), value(s).cast(f()).alias("v")])
                .group_by([col(stage_column(s))])
                .agg([
                    col("v").sum().alias("sum"),
                    col("v").pow(2).sum().alias("sum_sq"),
                    len().cast(f()).alias("n"),
                ])
                .select([
                    lit(s as u32).cast(DataType::UInt32).alias("stage"),
                    col(stage_column(s)).cast(DataType::UInt32).alias("uid"),
                    col("sum"),
                    col("sum_sq"),
                    col("n"),
                ])
        })
        .collect();
    concat(parts, UnionArgs::default())
}

/// From [`per_miner`]'s sums: each miner's `effect` against its stage (see the module docs),
/// its standard error `se`, and the stage's mean `stage_mean`.
fn against_stage(sums: LazyFrame) -> PolarsResult<LazyFrame> {
    let var = |ss: &str, s: &str, n: &str| {
        let (ss, s, n) = (col(ss), col(s), col(n));
        when(n.clone().gt(lit(1.0)))
            .then((ss - s.clone() * s / n.clone()) / (n - lit(1.0)))
            .otherwise(lit(NULL).cast(DataType::Float64))
    };
    Ok(sums
        .with_column((col("sum") / col("n")).alias("mean"))
        .with_columns([
            col("mean").median().over([col("stage")])?.alias("baseline"),
            col("n").count().over([col("stage")])?.alias("miners"),
            col("sum").sum().over([col("stage")])?.alias("stage_sum"),
            col("sum_sq")
                .sum()
                .over([col("stage")])?
                .alias("stage_sum_sq"),
            col("n").sum().over([col("stage")])?.alias("stage_n"),
        ])
        .with_columns([
            when(col("miners").gt(lit(1)))
                .then(col("mean") - col("baseline"))
                .otherwise(lit(0.0))
                .alias("effect"),
            (col("stage_sum") / col("stage_n")).alias("stage_mean"),
            var("sum_sq", "sum", "n").alias("var"),
            var("stage_sum_sq", "stage_sum", "stage_n").alias("stage_var"),
        ])
        .with_column(
            (col("var") / col("n") + col("stage_var") / col("stage_n"))
                .sqrt()
                .alias("se"),
        ))
}

/// Attributes the epoch's `paths` (as [`paths_frame`] lays them out) over `stages` stages.
/// One [`Effect`] per miner with a path, by uid.
///
/// # Errors
/// When polars fails (it does not on a table from [`paths_frame`]).
pub fn attribute(paths: &DataFrame, stages: usize, config: &Config) -> PolarsResult<Vec<Effect>> {
    if paths.height() == 0 {
        return Ok(Vec::new());
    }
    let wide = paths.clone().lazy();
    let first = against_stage(per_miner(&wide, stages, |_| col("loss"))?)?
        .select([col("stage"), col("uid"), col("effect")])
        .collect()?;
    // Backfitting: each path's loss less the first pass's effects of its other stages.
    let effect_of = |s: usize| format!("effect{s}");
    let mut backfit = wide;
    for s in 0..stages {
        let at_stage = first
            .clone()
            .lazy()
            .filter(col("stage").eq(lit(s as u32)))
            .select([
                col("uid").cast(DataType::UInt16).alias(stage_column(s)),
                col("effect").alias(effect_of(s)),
            ]);
        backfit = backfit
            .join(
                at_stage,
                [col(stage_column(s))],
                [col(stage_column(s))],
                JoinArgs::new(JoinType::Left),
            )
            .with_column(col(effect_of(s)).fill_null(lit(0.0)));
    }
    let total = (1..stages).fold(col(effect_of(0)), |acc, s| acc + col(effect_of(s)));
    let backfit = backfit.with_column(total.alias("total_effect"));
    let out = against_stage(per_miner(&backfit, stages, |s| {
        col("loss") - (col("total_effect") - col(effect_of(s)))
    })?)?
    .select([
        col("stage"),
        col("uid"),
        col("n"),
        col("effect"),
        col("se"),
        col("stage_mean"),
    ])
    .sort(["uid"], SortMultipleOptions::default())
    .collect()?;
    let u32s = |name: &str| -> PolarsResult<Vec<u32>> {
        Ok(out
            .column(name)?
            .u32()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let f64s = |name: &str| -> PolarsResult<Vec<Option<f64>>> {
        Ok(out.column(name)?.f64()?.iter().collect())
    };
    let (stage, uid) = (u32s("stage")?, u32s("uid")?);
    let (n, effect, se, mean) = (
        f64s("n")?,
        f64s("effect")?,
        f64s("se")?,
        f64s("stage_mean")?,
    );
    Ok((0..out.height())
        .map(|i| {
            let paths = n[i].unwrap_or(0.0) as u64;
            let effect = effect[i].filter(|e| e.is_finite()).unwrap_or(0.0);
            let t = match se[i] {
                Some(se) if se > 0.0 && se.is_finite() => effect / se,
                _ => 0.0,
            };
            let stage_mean = mean[i].unwrap_or(0.0);
            Effect {
                uid: uid[i] as u16,
                stage: StageIndex(stage[i] as u16),
                paths,
                effect,
                confidence: normal_cdf(t),
                flagged: paths >= config.min_paths
                    && t >= config.z
                    && effect >= config.min_effect * stage_mean,
            }
        })
        .collect())
}

/// [`attribute`], keyed by uid.
///
/// # Errors
/// When polars fails.
pub fn attribute_by_uid(
    paths: &DataFrame,
    stages: usize,
    config: &Config,
) -> PolarsResult<std::collections::BTreeMap<u16, Effect>> {
    Ok(attribute(paths, stages, config)?
        .into_iter()
        .map(|e| (e.uid, e))
        .collect())
}

/// The standard normal distribution function.
fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator: the tests must not depend on a seed's luck across platforms.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Roughly normal: the sum of 12 uniforms minus 6.
        fn normal(&mut self) -> f64 {
            (0..12).map(|_| self.next()).sum::<f64>() - 6.0
        }
    }

    /// `samples` paths over 3 stages of 3 miners (uids 3s..3s+2), routed at random, with the
    /// given extra loss per uid.
    fn simulate(samples: u64, extra: &[(u16, f64)], seed: u64) -> Vec<Path> {
        simulate_wide(3, samples, extra, seed)
    }

    /// [`simulate`] with `per` miners per stage (uids `per * s + i`).
    fn simulate_wide(per: u16, samples: u64, extra: &[(u16, f64)], seed: u64) -> Vec<Path> {
        let mut rng = Lcg(seed);
        (0..samples)
            .map(|sample| {
                let uids: Vec<u16> = (0..3u16)
                    .map(|s| per * s + (rng.next() * f64::from(per)) as u16)
                    .collect();
                let bad: f64 = extra
                    .iter()
                    .filter(|(u, _)| uids.contains(u))
                    .map(|(_, e)| e)
                    .sum();
                let loss = 2.5 + 0.3 * rng.normal() + bad;
                Path {
                    sample,
                    uids,
                    loss: loss.max(0.0) as f32,
                }
            })
            .collect()
    }

    #[test]
    fn an_honest_epoch_flags_no_one() {
        for seed in 0..5 {
            let paths = simulate(3000, &[], seed);
            let df = paths_frame(Epoch(1), 3, &paths).unwrap();
            let effects = attribute(&df, 3, &Config::default()).unwrap();
            assert_eq!(effects.len(), 9);
            assert_eq!(effects.iter().map(|e| e.paths).sum::<u64>(), 3 * 3000);
            for e in &effects {
                assert!(!e.flagged, "seed {seed}: {e:?}");
                assert!(e.effect.abs() < 0.06, "seed {seed}: {e:?}");
            }
        }
    }

    #[test]
    fn a_harmful_miner_is_flagged_and_its_path_mates_are_not() {
        // uid 4 (stage 1) adds 0.15 to every loss it touches; uid 0 (stage 0) 0.5.
        let paths = simulate(3000, &[(4, 0.15), (0, 0.5)], 7);
        let df = paths_frame(Epoch(1), 3, &paths).unwrap();
        let effects = attribute(&df, 3, &Config::default()).unwrap();
        let by_uid = |u: u16| effects.iter().find(|e| e.uid == u).unwrap();
        let flagged: Vec<u16> = effects
            .iter()
            .filter(|e| e.flagged)
            .map(|e| e.uid)
            .collect();
        assert_eq!(flagged, vec![0, 4]);
        // The estimates recover the injected effects against the peers' mean.
        assert!((by_uid(4).effect - 0.15).abs() < 0.05, "{:?}", by_uid(4));
        assert!((by_uid(0).effect - 0.5).abs() < 0.05, "{:?}", by_uid(0));
        assert!(by_uid(4).confidence > 0.999);
        assert_eq!(by_uid(4).stage, StageIndex(1));
    }

    #[test]
    fn adversaries_in_one_stage_do_not_hide_each_other() {
        // Stage 1 (uids 5..10) holds two adversaries of different strength.
        let paths = simulate_wide(5, 6000, &[(5, 1.2), (6, 0.3)], 11);
        let df = paths_frame(Epoch(1), 3, &paths).unwrap();
        let effects = attribute(&df, 3, &Config::default()).unwrap();
        let flagged: Vec<u16> = effects
            .iter()
            .filter(|e| e.flagged)
            .map(|e| e.uid)
            .collect();
        assert_eq!(flagged, vec![5, 6], "{effects:?}");
    }

    #[test]
    fn confidence_grows_with_paths() {
        let few = simulate(300, &[(4, 0.1)], 3);
        let many = simulate(3000, &[(4, 0.1)], 3);
        let c = |p: &[Path]| {
            let df = paths_frame(Epoch(1), 3, p).unwrap();
            let e = attribute(&df, 3, &Config::default()).unwrap();
            e.into_iter().find(|e| e.uid == 4).unwrap().confidence
        };
        assert!(c(&many) > c(&few), "{} <= {}", c(&many), c(&few));
    }

    #[test]
    fn a_lone_miner_and_an_empty_epoch_are_not_flagged() {
        assert!(
            attribute(
                &paths_frame(Epoch(1), 3, &[]).unwrap(),
                3,
                &Config::default()
            )
            .unwrap()
            .is_empty()
        );
        let paths: Vec<Path> = (0..100)
            .map(|i| Path {
                sample: i,
                uids: vec![0, 1],
                loss: 9.0,
            })
            .collect();
        let df = paths_frame(Epoch(1), 2, &paths).unwrap();
        let effects = attribute(&df, 2, &Config::default()).unwrap();
        assert!(effects.iter().all(|e| !e.flagged && e.effect == 0.0));
    }

    #[test]
    fn the_path_table_reads_back_from_parquet() {
        let paths = simulate(50, &[], 1);
        let mut df = paths_frame(Epoch(4), 3, &paths).unwrap();
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(buf))
            .finish()
            .unwrap();
        assert_eq!(back, df);
        let names: Vec<&str> = back.get_column_names().iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["epoch", "sample", "stage0", "stage1", "stage2", "loss"]
        );
        assert_eq!(back.column("stage1").unwrap().dtype(), &DataType::UInt16);
    }
}
