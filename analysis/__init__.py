"""trialkit: clinical-trial outcome analysis from a declared study plan.

The public Python API. Each name is imported on first use (module ``__getattr__``), so
``import analysis`` costs almost nothing and ``trialkit --help`` does not load pandas or SciPy.
Every function takes and returns DataFrames or frozen result objects; see ``docs/architecture.md``
for the stage each one belongs to.

Examples
--------
>>> import analysis as tk
>>> tk.hedges_j(10)  # doctest: +ELLIPSIS
0.922...
>>> "escalc" in tk.__all__
True
"""

from __future__ import annotations

from importlib import import_module


def _version() -> str:
    """The installed distribution's version; read on first use of ``analysis.__version__`` (importing
    ``importlib.metadata`` and scanning the installed distributions would slow every command)."""
    from importlib import metadata

    try:
        return metadata.version("trialkit")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


# public name -> (module, attribute): one line per function a notebook user calls, by stage
_API: dict[str, tuple[str, str]] = {
    # plan and data in
    "load_plan": ("analysis.plan", "load_plan"),
    "load_trial": ("analysis.pipeline", "load_trial"),
    "validate_trial": ("analysis.checks.contracts", "validate_trial"),
    # derive
    "build_analysis_dataset": ("analysis.derive.dataset", "build_analysis_dataset"),
    "derive_baseline": ("analysis.derive.dataset", "derive_baseline"),
    "derive_change": ("analysis.derive.dataset", "derive_change"),
    "derive_pct_change": ("analysis.derive.dataset", "derive_pct_change"),
    # descriptive statistics
    "describe": ("analysis.stats.describe", "describe"),
    # effect sizes
    "escalc": ("analysis.stats.effects", "escalc"),
    "hedges_j": ("analysis.stats.effects", "hedges_j"),
    "mean_difference": ("analysis.stats.effects", "mean_difference"),
    "standardized_mean_difference": ("analysis.stats.effects", "standardized_mean_difference"),
    "cohens_d": ("analysis.stats.effects", "cohens_d"),
    "glass_delta": ("analysis.stats.effects", "glass_delta"),
    "smd_heteroscedastic": ("analysis.stats.effects", "smd_heteroscedastic"),
    "smd_noncentral_ci": ("analysis.stats.effects", "smd_noncentral_ci"),
    "log_ratio_of_means": ("analysis.stats.effects", "log_ratio_of_means"),
    "mean_change": ("analysis.stats.effects", "mean_change"),
    "smcc": ("analysis.stats.effects", "smcc"),
    "smcr": ("analysis.stats.effects", "smcr"),
    "d_ppc2": ("analysis.stats.effects", "d_ppc2"),
    "percent_change_of_means": ("analysis.stats.effects", "percent_change_of_means"),
    "mean_of_percent_changes": ("analysis.stats.effects", "mean_of_percent_changes"),
    "ratio_of_improvements": ("analysis.stats.effects", "ratio_of_improvements"),
    "hedges_g_bootstrap": ("analysis.stats.effects", "hedges_g_bootstrap"),
    "effect_sizes_table": ("analysis.stats.effects", "effect_sizes_table"),
    "sd_from_se": ("analysis.stats.effects.conversions", "sd_from_se"),
    "sd_from_ci": ("analysis.stats.effects.conversions", "sd_from_ci"),
    "sd_from_iqr": ("analysis.stats.effects.conversions", "sd_from_iqr"),
    "sd_from_range": ("analysis.stats.effects.conversions", "sd_from_range"),
    "mean_from_median_iqr": ("analysis.stats.effects.conversions", "mean_from_median_iqr"),
    "mean_from_median_range": ("analysis.stats.effects.conversions", "mean_from_median_range"),
    # models
    "ancova": ("analysis.stats.models.ancova", "ancova"),
    "adjust_pvalues": ("analysis.stats.models.ancova", "adjust_pvalues"),
    "fit_mmrm": ("analysis.stats.models.mmrm", "fit_mmrm"),
    "multiple_imputation_ancova": ("analysis.stats.models.missing", "multiple_imputation_ancova"),
    "tipping_point": ("analysis.stats.models.missing", "tipping_point"),
    "rubin_pool": ("analysis.stats.models.rubin", "rubin_pool"),
    "missing_table": ("analysis.stats.models.missing", "missing_table"),
    "responders_table": ("analysis.stats.models.responders", "responders_table"),
    "compare_proportions": ("analysis.stats.models.responders", "compare_proportions"),
    "nnt_interval": ("analysis.stats.models.responders", "nnt_interval"),
    # meta-analysis and power
    "meta_analysis": ("analysis.stats.meta", "pool"),
    "meta_table": ("analysis.stats.meta", "meta_table"),
    "ttest_power": ("analysis.stats.power", "ttest_power"),
    "ttest_n": ("analysis.stats.power", "ttest_n"),
    "ancova_power": ("analysis.stats.power", "ancova_power"),
    "ancova_n": ("analysis.stats.power", "ancova_n"),
    "inflate_for_attrition": ("analysis.stats.power", "inflate_for_attrition"),
    "simulate_power_ancova": ("analysis.stats.power", "simulate_power_ancova"),
    "simulate_power_mmrm": ("analysis.stats.power", "simulate_power_mmrm"),
    # tables and figures
    "table1_stats": ("analysis.reporting.table1", "table1_stats"),
    "table1_display": ("analysis.reporting.table1", "table1_display"),
    "consort_flow": ("analysis.reporting.consort", "consort_flow"),
    "enrollment_table": ("analysis.reporting.nih", "enrollment_table"),
    "retention_table": ("analysis.reporting.retention", "retention_table"),
    "plot_trajectories": ("analysis.reporting.figures", "plot_trajectories"),
    "plot_change_distribution": ("analysis.reporting.figures", "plot_change_distribution"),
    "plot_effects_by_visit": ("analysis.reporting.figures", "plot_effects_by_visit"),
    "forest_plot": ("analysis.reporting.forest", "forest_plot"),
    # the whole run, and simulation
    "run": ("analysis.pipeline", "run"),
    "verify": ("analysis.pipeline", "verify"),
    "simulate_trial": ("analysis.replicate.simulate", "simulate_trial"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    try:
        module, attribute = _API[name]
    except KeyError:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | {"__version__"})
