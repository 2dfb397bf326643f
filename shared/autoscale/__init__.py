"""Teacher-pool autoscaling: the sizing policy, the KEDA manifest it renders, and a day-long simulator."""
