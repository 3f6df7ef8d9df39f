"""Runs every module of the corpus (each file is profiled and analysed)."""
import clean_patterns
import hot_cold
import planted_patterns

clean_patterns.main()
hot_cold.main()
planted_patterns.main()
