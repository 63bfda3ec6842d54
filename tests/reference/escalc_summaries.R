# Reference values for `trialkit escalc` on published summaries (tests/cli/test_escalc_summaries.py).
# The conversions are written out here from the published formulas (Cochrane Handbook 6.5.2.2;
# Wan et al. 2014, eqs. for scenarios C1 and C3), one per arm as the row's columns dictate; the
# effect sizes are metafor's escalc + summary on the converted means and SDs.
# Run from tests/reference/: Rscript escalc_summaries.R  (reads escalc_summaries.csv, writes escalc_summaries_ref.json)
suppressMessages({library(metafor); library(jsonlite)})
d <- read.csv("escalc_summaries.csv", check.names=FALSE, stringsAsFactors=FALSE)
reported <- function(m, sd) c(m, sd)
from_se  <- function(n, m, se) c(m, se * sqrt(n))                                         # Cochrane 6.5.2.2
from_ci  <- function(n, m, lo, hi, level=0.95, q=qt((1 + level)/2, n - 1)) c(m, sqrt(n) * (hi - lo) / (2 * q))  # Cochrane 6.5.2.2
from_iqr <- function(n, q1, med, q3) c((q1 + med + q3)/3, (q3 - q1) / (2 * qnorm((0.75*n - 0.125)/(n + 0.25))))  # Wan C3
from_rng <- function(n, a, med, b) c((a + 2*med + b)/4, (b - a) / (2 * qnorm((n - 0.375)/(n + 0.25))))          # Wan C1
sd_iqr   <- function(n, m, q1, q3) c(m, from_iqr(n, q1, q1, q3)[2])                        # reported mean, Wan C3 SD
arms <- function(level=0.95, qfun=function(n, level) qt((1 + level)/2, n - 1)) list(
  "A mixed"    = list(reported(12.1, 4.3),                         from_iqr(38, 10, 14, 19)),
  "B SE"       = list(from_se(25, 50.2, 1.8),                      reported(46.9, 9.5)),
  "C CI n25"   = list(from_ci(25, 31.0, 28.2, 33.8, level, qfun(25, level)), from_ci(24, 27.5, 24.9, 30.1, level, qfun(24, level))),
  "D range"    = list(from_rng(30, 10, 24, 50),                    from_rng(30, 8, 20, 41)),
  "E SD wins"  = list(reported(10, 2),                             reported(9, 2.2)),
  "F 90% CI"   = list(from_ci(12, 5.5, 4.1, 6.9, 0.90, qfun(12, 0.90)), reported(4.0, 1.9)),
  "G CI n150"  = list(from_ci(150, 20.3, 19.1, 21.5, level, qfun(150, level)), from_se(148, 18.9, 0.55)),
  "H no spread"= list(c(5, NA),                                    reported(4, 1)),
  "I mean+IQR" = list(sd_iqr(50, 7.2, 5, 9.5),                     reported(6.1, 2.4)))
variant <- function(conv) {
  m1 <- sapply(conv, function(a) a[[1]][1]); s1 <- sapply(conv, function(a) a[[1]][2])
  m2 <- sapply(conv, function(a) a[[2]][1]); s2 <- sapply(conv, function(a) a[[2]][2])
  out <- list(study=names(conv), m1i=unname(m1), sd1i=unname(s1), m2i=unname(m2), sd2i=unname(s2))
  for (measure in c("MD", "SMD")) {
    e <- summary(escalc(measure, n1i=d$n1i, m1i=m1, sd1i=s1, n2i=d$n2i, m2i=m2, sd2i=s2))
    out[[measure]] <- list(yi=as.numeric(e$yi), vi=as.numeric(e$vi), ci_low=e$ci.lb, ci_high=e$ci.ub)
  }
  out
}
ref <- list(
  t95 = variant(arms()),                                                       # default: t quantile, 95% unless ci_level*i says
  level99 = variant(arms(0.99)),                                               # --reported-ci-level 0.99 (row F keeps its 0.90 column)
  z95 = variant(arms(qfun=function(n, level) qnorm((1 + level)/2))))           # --reported-ci-distribution z
# within an arm (MC, SMCC): post mean with its SE, pre median with quartiles, n = 30, r = 0.6
post <- from_se(30, 40.1, 1.9); pre <- from_iqr(30, 40, 45, 52)
within <- list(m1i=post[1], sd1i=post[2], m2i=pre[1], sd2i=pre[2])
for (measure in c("MC", "SMCC")) {
  e <- summary(escalc(measure, ni=30, m1i=post[1], sd1i=post[2], m2i=pre[1], sd2i=pre[2], ri=0.6))
  within[[measure]] <- list(yi=as.numeric(e$yi), vi=as.numeric(e$vi))
}
ref$within <- within
ref$quantiles <- list(qt_975_24=qt(0.975, 24), qt_95_11=qt(0.95, 11), qt_975_149=qt(0.975, 149), qt_995_24=qt(0.995, 24),
                      xi_30=2*qnorm((30 - 0.375)/30.25), eta_38=2*qnorm((0.75*38 - 0.125)/38.25), eta_50=2*qnorm((0.75*50 - 0.125)/50.25))
ref$R <- R.version.string; ref$metafor <- as.character(packageVersion("metafor"))
writeLines(toJSON(ref, auto_unbox=TRUE, digits=NA, pretty=TRUE, na="null"), "escalc_summaries_ref.json")
