# Empirical (sandwich) covariance references for tests/stats/models/test_mmrm_formula.py.
# Rerun (from the repository root): Rscript tests/reference/mmrm_sandwich.R tests/reference
# Needs R with nlme, clubSandwich, jsonlite (Debian: r-cran-nlme r-cran-clubsandwich
# r-cran-jsonlite). Writes mmrm_sandwich_ref.json.
# The sandwich is the classical one (SAS EMPIRICAL, R mmrm vcov = "Empirical"): clubSandwich's
# CR0, (X'V^-1 X)^-1 [sum_i X_i' V_i^-1 r_i r_i' V_i^-1 X_i] (X'V^-1 X)^-1, clustered by
# participant, on nlme::gls fits with the covariance structure named.
# Data: tests/reference/mmrm_synthetic_wide.csv (made by mmrm_open.R), long, weeks 4, 8, 12.
suppressMessages({library(nlme); library(clubSandwich); library(jsonlite)})
args <- commandArgs(trailingOnly=TRUE); out <- if (length(args)) args[1] else "."
wide <- read.csv(file.path(out, "mmrm_synthetic_wide.csv"))
long <- reshape(wide, direction="long", varying=c("week4","week8","week12"), v.names="value",
                timevar="week", times=c(4,8,12), idvar="participant_id")
long <- long[order(long$participant_id, long$week), ]; long <- long[!is.na(long$value), ]
long$visit <- factor(long$week); long$t <- as.integer(long$visit); long$arm <- factor(long$arm)
ctl <- glsControl(tolerance=1e-10, msTol=1e-12, maxIter=500, msMaxIter=500, returnObject=FALSE)
f <- value ~ baseline + arm*visit
fits <- list(
  cs  = gls(f, long, correlation=corCompSymm(form=~t|participant_id), method="REML", control=ctl),
  ar1 = gls(f, long, correlation=corAR1(form=~t|participant_id), method="REML", control=ctl),
  us  = gls(f, long, correlation=corSymm(form=~t|participant_id), weights=varIdent(form=~1|visit),
            method="REML", control=ctl))
res <- lapply(fits, function(m) list(
  fixed=as.list(coef(m)),
  vcov_model=unname(as.matrix(vcov(m))),
  vcov_empirical=unname(as.matrix(vcovCR(m, cluster=long$participant_id, type="CR0")))))
res$versions <- list(R=R.version.string, nlme=as.character(packageVersion("nlme")),
                     clubSandwich=as.character(packageVersion("clubSandwich")))
writeLines(toJSON(res, auto_unbox=TRUE, digits=NA, pretty=TRUE), file.path(out, "mmrm_sandwich_ref.json"))
cat("ok\n")
