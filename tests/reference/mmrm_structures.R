# MMRM covariance structures and Kenward-Roger references for tests/stats/models/test_mmrm_formula.py.
# Rerun (from the repository root): Rscript tests/reference/mmrm_structures.R tests/reference
# Needs R with nlme, emmeans, lme4, pbkrtest, jsonlite (Debian: r-cran-nlme r-cran-emmeans
# r-cran-lme4 r-cran-pbkrtest r-cran-jsonlite). Writes mmrm_structures_ref.json.
# Data: tests/reference/mmrm_synthetic_wide.csv (made by mmrm_open.R), long, weeks 4, 8, 12.
suppressMessages({library(nlme); library(emmeans); library(lme4); library(pbkrtest); library(jsonlite)})
args <- commandArgs(trailingOnly=TRUE); out <- if (length(args)) args[1] else "."
wide <- read.csv(file.path(out, "mmrm_synthetic_wide.csv"))
long <- reshape(wide, direction="long", varying=c("week4","week8","week12"), v.names="value",
                timevar="week", times=c(4,8,12), idvar="participant_id")
long <- long[order(long$participant_id, long$week), ]; long <- long[!is.na(long$value), ]
long$visit <- factor(long$week); long$t <- as.integer(long$visit); long$arm <- factor(long$arm)
ctl <- glsControl(tolerance=1e-10, msTol=1e-12, maxIter=500, msMaxIter=500, returnObject=FALSE)
f <- value ~ baseline + arm*visit
fits <- list(
  cs    = gls(f, long, correlation=corCompSymm(form=~t|participant_id), method="REML", control=ctl),
  csh   = gls(f, long, correlation=corCompSymm(form=~t|participant_id), weights=varIdent(form=~1|visit), method="REML", control=ctl),
  ar1   = gls(f, long, correlation=corAR1(form=~t|participant_id), method="REML", control=ctl),
  ar1h  = gls(f, long, correlation=corAR1(form=~t|participant_id), weights=varIdent(form=~1|visit), method="REML", control=ctl),
  toep  = gls(f, long, correlation=corARMA(form=~t|participant_id, p=2), method="REML", control=ctl),
  toeph = gls(f, long, correlation=corARMA(form=~t|participant_id, p=2), weights=varIdent(form=~1|visit), method="REML", control=ctl),
  sp_exp= gls(f, long, correlation=corExp(form=~week|participant_id), method="REML", control=ctl),
  us    = gls(f, long, correlation=corSymm(form=~t|participant_id), weights=varIdent(form=~1|visit), method="REML", control=ctl),
  us_ml = gls(f, long, correlation=corSymm(form=~t|participant_id), weights=varIdent(form=~1|visit), method="ML", control=ctl))
res <- lapply(fits, function(m) list(logLik=as.numeric(logLik(m)), fixed=as.list(coef(m)),
  fixed_se=as.list(sqrt(diag(vcov(m)))),
  covariance=unname(matrix(as.numeric(getVarCov(m, individual=long$participant_id[long$week==12][1])), 3))))
# grouped (per arm) unstructured by ML: with every fixed effect interacted with arm, the ML
# log-likelihood is the sum of the per-arm ML fits.
res$us_by_arm_ml <- list(logLik=sum(sapply(split(long, long$arm), function(d)
  as.numeric(logLik(gls(value ~ baseline + visit, d, correlation=corSymm(form=~t|participant_id),
                        weights=varIdent(form=~1|visit), method="ML", control=ctl))))),
  model="value ~ arm*(baseline + visit) + us(visit | arm / participant_id), ML")
# Kenward-Roger (pbkrtest: expected information, linear parameterisation) on the random-intercept
# model, i.e. compound symmetry with a non-negative correlation.
lmm <- lmer(value ~ baseline + arm*visit + (1|participant_id), data=long, REML=TRUE,
            control=lmerControl(optimizer="bobyqa", optCtrl=list(rhobeg=0.1, rhoend=1e-12)))
adj <- as.matrix(vcovAdj(lmm))
kr <- lapply(list(c(0,0,1,0,0,0,0), c(0,0,1,0,0,1,0), c(0,0,1,0,0,0,1), c(1,62,0,0,0,0,0)), function(l) {
  L <- matrix(l, 1); k <- KRmodcomp(lmm, L)$test; list(L=l, ddf=k["Ftest","ddf"], F_scaling=k["Ftest","F.scaling"],
  var_adjusted=as.numeric(L %*% adj %*% t(L)))})
res$kr_random_intercept <- list(fixed=as.list(fixef(lmm)), vcov_adjusted=unname(adj), contrasts=kr,
  sigma=sigma(lmm), sd_intercept=as.numeric(attr(VarCorr(lmm)$participant_id, "stddev")))
writeLines(toJSON(res, auto_unbox=TRUE, digits=NA, pretty=TRUE), file.path(out, "mmrm_structures_ref.json"))
cat("ok\n")
