# Writes R mmrm's example data set fev_data (data/fev_data.rda in github.com/openpharma/mmrm,
# Apache-2.0; see sas_kr_fev.md for the commit) as fev_data.csv. R is needed only to rerun this:
#   git -C <mmrm clone> show <commit>:data/fev_data.rda > fev_data.rda
#   Rscript tests/reference/fev_data_to_csv.R fev_data.rda tests/reference/fev_data.csv
args <- commandArgs(trailingOnly = TRUE)
env <- new.env()
load(args[1], envir = env)
# factors are written as their labels; missing FEV1 as NA; numbers with R's 15 significant digits
write.csv(env$fev_data, args[2], row.names = FALSE)
