"""trialkit: clinical-trial outcome analysis."""
