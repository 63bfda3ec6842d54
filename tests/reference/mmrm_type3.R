# Type III F tests of the fixed effects (SAS's "Type 3 Tests of Fixed Effects") for
# tests/stats/models/test_mmrm_type3.py.
# Rerun (from the repository root): Rscript tests/reference/mmrm_type3.R tests/reference
# Needs R with lme4, lmerTest, pbkrtest, jsonlite (Debian: r-cran-lme4 r-cran-lmertest
# r-cran-pbkrtest r-cran-jsonlite). Writes mmrm_type3_ref.json.
# The random-intercept model is the MMRM with compound symmetry (a non-negative correlation):
# lmerTest's anova(type = 3) gives the F tests with Satterthwaite df (Fai & Cornelius: one df per
# eigen-direction of L cov(beta) L', combined) and, through pbkrtest's KRmodcomp, with
# Kenward-Roger's scaled F and df (pbkrtest: expected information).
# Data: tests/reference/mmrm_synthetic_wide.csv (made by mmrm_open.R), long, weeks 4, 8, 12.
suppressMessages({library(lmerTest); library(pbkrtest); library(jsonlite)})
args <- commandArgs(trailingOnly=TRUE); out <- if (length(args)) args[1] else "."
wide <- read.csv(file.path(out, "mmrm_synthetic_wide.csv"))
long <- reshape(wide, direction="long", varying=c("week4","week8","week12"), v.names="value",
                timevar="week", times=c(4,8,12), idvar="participant_id")
long <- long[order(long$participant_id, long$week), ]; long <- long[!is.na(long$value), ]
long$visit <- factor(long$week); long$arm <- factor(long$arm)
m <- lmer(value ~ baseline + arm*visit + (1|participant_id), data=long, REML=TRUE,
          control=lmerControl(optimizer="bobyqa", optCtrl=list(rhobeg=0.1, rhoend=1e-12)))
# The df of a multi-row Satterthwaite F depend on the rows of L (their eigen-directions under
# cov(beta)); anova(type = 3) takes its own rows. SAS's rows are each level minus the last
# (visit 12), averaged over arm; written out for beta = (Intercept, baseline, armtreatment,
# visit8, visit12, armtreatment:visit8, armtreatment:visit12), they are tested with contest().
sas_rows <- list(
  visit = rbind(c(0, 0, 0, 0, -1, 0, -0.5), c(0, 0, 0, 1, -1, 0.5, -0.5)),
  `arm:visit` = rbind(c(0, 0, 0, 0, 0, 0, -1), c(0, 0, 0, 0, 0, 1, -1)))
stopifnot(identical(names(fixef(m)), c("(Intercept)", "baseline", "armtreatment", "visit8",
                                        "visit12", "armtreatment:visit8", "armtreatment:visit12")))
contest_rows <- lapply(sas_rows, function(L) {
  s <- contest(m, L, joint=TRUE, ddf="Satterthwaite")
  k <- contest(m, L, joint=TRUE, ddf="Kenward-Roger")
  list(L=L, satterthwaite=list(num_df=s$NumDF, den_df=s$DenDF, F=s[["F value"]]),
       kenward_roger=list(num_df=k$NumDF, den_df=k$DenDF, F=k[["F value"]]))})
table <- function(a) lapply(setNames(rownames(a), rownames(a)), function(term) list(
  num_df=a[term, "NumDF"], den_df=a[term, "DenDF"], F=a[term, "F value"], p=a[term, "Pr(>F)"]))
res <- list(
  model="value ~ baseline + arm*visit + (1 | participant_id), REML",
  satterthwaite=table(anova(m, type=3, ddf="Satterthwaite")),
  kenward_roger=table(anova(m, type=3, ddf="Kenward-Roger")),
  sas_rows=contest_rows,
  versions=list(R=R.version.string, lmerTest=as.character(packageVersion("lmerTest")),
                pbkrtest=as.character(packageVersion("pbkrtest"))))
writeLines(toJSON(res, auto_unbox=TRUE, digits=NA, pretty=TRUE), file.path(out, "mmrm_type3_ref.json"))
cat("ok\n")
