# Per-group covariance references (STRUCT(TIME | GROUP / SUBJECT)) for
# tests/stats/models/test_mmrm_formula.py.
# Rerun (from the repository root): Rscript tests/reference/mmrm_grouped.R tests/reference
# Needs R with nlme, jsonlite (Debian: r-cran-nlme r-cran-jsonlite). Writes mmrm_grouped_ref.json.
# With every fixed effect interacted with the group, the model with one covariance matrix per
# group splits into independent per-group models: its ML and its REML log-likelihoods are the
# sums of the per-group fits' (X'V^-1 X is block diagonal, and sum(N_g - p_g) = N - p).
# Data: tests/reference/mmrm_synthetic_wide.csv (made by mmrm_open.R), long, weeks 4, 8, 12;
# groups: the two arms.
suppressMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly=TRUE); out <- if (length(args)) args[1] else "."
wide <- read.csv(file.path(out, "mmrm_synthetic_wide.csv"))
long <- reshape(wide, direction="long", varying=c("week4","week8","week12"), v.names="value",
                timevar="week", times=c(4,8,12), idvar="participant_id")
long <- long[order(long$participant_id, long$week), ]; long <- long[!is.na(long$value), ]
long$visit <- factor(long$week); long$t <- as.integer(long$visit); long$arm <- factor(long$arm)
ctl <- glsControl(tolerance=1e-10, msTol=1e-12, maxIter=500, msMaxIter=500, returnObject=FALSE)
f <- value ~ baseline + visit
het <- varIdent(form=~1|visit)
structures <- list(
  cs    = list(correlation=function() corCompSymm(form=~t|participant_id), weights=NULL),
  csh   = list(correlation=function() corCompSymm(form=~t|participant_id), weights=het),
  ar1   = list(correlation=function() corAR1(form=~t|participant_id), weights=NULL),
  ar1h  = list(correlation=function() corAR1(form=~t|participant_id), weights=het),
  toep  = list(correlation=function() corARMA(form=~t|participant_id, p=2), weights=NULL),
  toeph = list(correlation=function() corARMA(form=~t|participant_id, p=2), weights=het),
  sp_exp= list(correlation=function() corExp(form=~week|participant_id), weights=NULL),
  us    = list(correlation=function() corSymm(form=~t|participant_id), weights=het))
res <- list()
for (name in names(structures)) {
  s <- structures[[name]]
  for (method in c("REML", "ML")) {
    per_arm <- sapply(split(long, long$arm), function(d) {
      fit <- if (is.null(s$weights)) gls(f, d, correlation=s$correlation(), method=method, control=ctl)
             else gls(f, d, correlation=s$correlation(), weights=s$weights, method=method, control=ctl)
      as.numeric(logLik(fit))})
    res[[name]][[method]] <- list(logLik=sum(per_arm), per_arm=as.list(per_arm))
  }
}
res$model <- "value ~ arm*(baseline + visit) + STRUCT(visit | arm / participant_id); per arm: value ~ baseline + visit"
res$versions <- list(R=R.version.string, nlme=as.character(packageVersion("nlme")))
writeLines(toJSON(res, auto_unbox=TRUE, digits=NA, pretty=TRUE), file.path(out, "mmrm_grouped_ref.json"))
cat("ok\n")
